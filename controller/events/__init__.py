"""Events out: the outbox, the live stream and subscriptions (webhooks, email); docs/events.md."""
