"""What ops and admins read about the system itself: the /db-admin dashboard's queries, the scheduler's runs."""
