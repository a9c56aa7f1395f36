"""Services: command handlers, the outbox relay, the deadline scheduler, batched ballot ingest."""
