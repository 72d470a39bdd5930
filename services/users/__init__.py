"""A user's account: what they and admins read of it and change in it."""
