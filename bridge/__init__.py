"""Bridge: carries tickets to the 12345 system and results to the central rating store."""
