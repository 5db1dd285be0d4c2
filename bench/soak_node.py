"""`pingjia serve` with tracemalloc on, for `bench/soak.py --trace-memory`.

    python bench/soak_node.py SNAPSHOT_PREFIX     # then: kill -USR1 PID → PREFIX.N.snap

The first SIGUSR1 starts tracing (not at start-up: tracing the imports and the migrations
slows them past a minute on a loaded machine, and a leak is what grows later); the n-th one
after it writes a snapshot of the Python allocations since then (10 frames each) to
`SNAPSHOT_PREFIX.<n>.snap`. bench/soak.py compares the one taken after the warm-up with the
last and prints where the memory went. Tracing slows the node and adds to its RSS: figures of
a traced run are for finding a leak, not for the tables.
"""

from __future__ import annotations

import signal
import sys
import tracemalloc
from types import FrameType


def main() -> int:
    prefix = sys.argv[1]
    taken = 0

    def dump(_signum: int, _frame: FrameType | None) -> None:
        nonlocal taken
        taken += 1
        if taken == 1:
            tracemalloc.start(10)
        else:
            tracemalloc.take_snapshot().dump(f"{prefix}.{taken}.snap")

    signal.signal(signal.SIGUSR1, dump)
    from pingjia.cli import main as cli

    return cli(["serve"])


if __name__ == "__main__":
    sys.exit(main())
