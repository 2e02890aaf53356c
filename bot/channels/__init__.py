"""Channel adapters: each turns platform input into an IncomingMessage and renders neutral replies."""
