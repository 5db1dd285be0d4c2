"""`pingjia db upgrade`: create or upgrade the database schema."""

from __future__ import annotations

import argparse
import asyncio

from pingjia.settings import Settings
from rating.db import engine as db

COMMANDS = ("db",)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    database = commands.add_parser("db", help="database schema")
    db_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="create or upgrade the schema to the newest revision")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(db.upgrade(settings.database_url))
    print("database schema is up to date")
    return 0
