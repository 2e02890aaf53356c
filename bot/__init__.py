"""The edges and the wiring: channels, the web app, the CLI."""
