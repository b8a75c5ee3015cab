"""Email: a durable outbox, sent over SMTP by a worker, or held for the UI (CONTRACT §9)."""
