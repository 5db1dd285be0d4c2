"""The prompts the IVR flows play: which ones a profile needs, whether they are built, building
them, and the list each Asterisk host is checked for."""

from __future__ import annotations

from ivr.flows import FLOWS, IvrContext
from ivr.prompt_check import PromptCheck
from pingjia.settings import Settings
from prompts import build as prompt_build
from prompts import catalog
from rating.policy.loader import builtin_profiles, load_profile
from rating.policy.profile import Profile


class PromptsMissing(RuntimeError):
    """Flows would play prompts that were never built; the message names them."""


def required_prompts(profile: Profile) -> dict[str, str | None]:
    """Every prompt any flow plays with this profile (id -> text when the flow writes it)."""
    needed: dict[str, str | None] = {}
    for flow in FLOWS.values():
        needed.update(flow.prompts(profile))
    return needed


def check_prompts(profile: Profile) -> None:
    missing = catalog.missing_audio(profile.prompt_language, list(required_prompts(profile)))
    if missing:
        raise PromptsMissing(
            f"{len(missing)} prompt(s) the IVR flows play are not built for language "
            f"{profile.prompt_language!r}: {', '.join(missing)}; run `pingjia prompts build`"
        )


def prompt_check(context: IvrContext) -> PromptCheck:
    """The sounds the flows play (as Asterisk names them) and the core beep RECORD FILE plays,
    to look for on each Asterisk host at its first call and hourly."""
    sounds = [context.prompt(prompt_id) for prompt_id in required_prompts(context.profile)]
    return PromptCheck([*sounds, "beep"])


def build_prompts(settings: Settings, force: bool = False) -> prompt_build.BuildReport:
    """Build the prompts of every flow for the configured profile and the built-in ones."""
    profiles = {name: load_profile(name) for name in builtin_profiles()}
    configured = load_profile(settings.profile)
    profiles[configured.name] = configured
    report = prompt_build.BuildReport()
    for language in sorted({p.prompt_language for p in profiles.values()}):
        needed: dict[str, str | None] = {}
        for profile in profiles.values():
            if profile.prompt_language == language:
                needed.update(required_prompts(profile))
        texts = catalog.texts_for(language, needed)
        done = prompt_build.build(language, texts, force=force, progress=print, prune=True)
        report.built += done.built
        report.kept += done.kept
        report.formats = done.formats
    tones = prompt_build.build_tones(progress=print)  # Asterisk's `beep`, for images without it
    report.built += tones.built
    report.kept += tones.kept
    return report
