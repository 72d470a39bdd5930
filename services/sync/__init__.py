"""The scheduler's use cases: keeping Postgres in step with Auth0, and the outbox."""
