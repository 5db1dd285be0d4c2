"""The server's collector settings: start-up frozen, full collections rarer."""

from __future__ import annotations

import gc

from pingjia.runtime import GEN2_EVERY, settle_gc


def test_settle_gc_freezes_start_up_and_spaces_full_collections() -> None:
    before = gc.get_threshold()
    try:
        settle_gc()
        assert gc.get_freeze_count() > 1000  # this process's modules and their objects
        assert gc.get_threshold() == (before[0], before[1], GEN2_EVERY)
        assert GEN2_EVERY > 10  # CPython's default, which gave the 50-70 ms pauses
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
