"""Statistics: per level, agency, agent, channel and day, and the nightly rollup."""
