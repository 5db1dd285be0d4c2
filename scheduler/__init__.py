"""Scheduler: idempotent sweeps (reminders, default ratings, deadlines, outbox retries)."""
