"""Call flows, one module per AGI script, registered under the script's name."""
