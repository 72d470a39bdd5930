"""Platform and group memberships: requests, admin decisions, their records and history, the role outbox."""
