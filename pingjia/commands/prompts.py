"""`pingjia prompts build`: synthesize and normalize the voice prompts every flow plays."""

from __future__ import annotations

import argparse
import sys

from pingjia.ivr_prompts import build_prompts
from pingjia.settings import Settings
from prompts import catalog

COMMANDS = ("prompts",)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prompts = commands.add_parser("prompts", help="voice prompts")
    actions = prompts.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    built = actions.add_parser(
        "build",
        help="synthesize missing prompts and normalize all of them into prompts/audio",
        description="espeak-ng (pinyin) for prompts without a recording; 8 kHz mono WAV.",
    )
    built.add_argument("--force", action="store_true", help="rebuild every prompt")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        report = build_prompts(settings, force=args.force)
    except catalog.PromptError as exc:
        print(f"pingjia prompts build: {exc}", file=sys.stderr)
        return 1
    print(
        f"prompts: {len(report.built)} built, {len(report.kept)} up to date, "
        f"formats {', '.join(report.formats)}, in {catalog.AUDIO}"
    )
    return 0
