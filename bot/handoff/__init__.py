"""The agents' desk: tickets handed over to a person, from the web inbox or Slack."""
