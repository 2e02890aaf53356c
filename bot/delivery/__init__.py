"""Sending outside a turn: the inbox and its worker, notices, reminders, the scheduler, mail."""
