"""Cases and their evaluations: registration, the start-of-call status check, their queries."""
