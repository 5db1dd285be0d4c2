"""Sweep claims: leases that let several processes share one background sweep."""
