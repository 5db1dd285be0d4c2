"""Ratings: the write path (group commit, adoption), default, late-reason and second ratings."""
