"""The `pingjia` command groups, one module each (a `CommandGroup`). `pingjia/cli.py` builds
the parser from them and dispatches."""

from __future__ import annotations

import argparse
from typing import Protocol, TypeAlias

from pingjia.settings import Settings

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CommandGroup(Protocol):
    """What a command group's module provides."""

    @property
    def COMMANDS(self) -> tuple[str, ...]:
        """The top-level command names it adds."""
        ...

    def add_commands(self, commands: Subparsers) -> None: ...

    def run_command(self, args: argparse.Namespace, settings: Settings) -> int:
        """Run the parsed command; the process's exit status."""
        ...
