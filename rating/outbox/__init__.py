"""The outbox to the central rating store: rows, national fields, the queue, dead letters."""
