"""What the bot does for each intent: plain functions from a turn context to neutral replies."""
