"""Call flows, one module per AGI script, registered under the script's name.

Adding a flow: write `ivr/flows/<name>.py` with a `FLOW`, list it below, and add its prompts
to prompts/prompts.toml; `pingjia prompts build` makes the audio.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ivr.agi import Channel, ScriptRequest
from ivr.flows import rating, survey
from ivr.flows.base import Flow, IvrContext

FLOWS: dict[str, Flow] = {flow.name: flow for flow in (rating.FLOW, survey.FLOW)}

Runner = Callable[[Channel, ScriptRequest], Awaitable[None]]


def runners(context: IvrContext) -> dict[str, Runner]:
    """Each flow bound to the context, as the AGI server routes to them."""

    def bind(flow: Flow) -> Runner:
        async def run(channel: Channel, request: ScriptRequest) -> None:
            await flow.run(channel, request, context)

        return run

    return {name: bind(flow) for name, flow in FLOWS.items()}


__all__ = ["FLOWS", "Flow", "IvrContext", "runners"]
