"""Dead letters: what the bridge gave up on (outbox rows, ticket transfers), listed and re-armed."""
