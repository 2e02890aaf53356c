"""The web edge: the Starlette app, its pages and its JSON endpoints."""
