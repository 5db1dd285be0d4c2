"""IVR: the FastAGI server Asterisk hands callers to, and the rating flows it runs."""
