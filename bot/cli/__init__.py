"""The `madoguchi` command and its groups."""
