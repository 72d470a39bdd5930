"""What Auth0 pushes: the inboxes of Event Streams and a Log Stream (`inbox`), and how the
scheduler reads their health (`stream_health`). Applying the events is the scheduler's job
(services/sync/event_apply.py)."""
