"""Tests of the natural-language understanding package `intents`."""
