"""Outgoing email: queued in the database with the change that causes it."""
