"""madoguchi's handlers as a Rasa action server (rasa_sdk), with the domain generated from intents/."""
