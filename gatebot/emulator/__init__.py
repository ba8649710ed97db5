"""A local Slack emulator: workspace state, a Web API fake, and a driver that plays Slack.

Used by offline tests of the Slack app and by ``gatebot demo``::

    ws = Workspace.sample(clock=ManualClock())
    with running_emulator(ws) as emu:                       # Web API at emu.api_url
        client = AsyncWebClient(base_url=emu.api_url, token=ws.bot_token)
        driver = emu.driver("http://127.0.0.1:3000/slack/events", signing_secret)
        await driver.slash_command("UALICE", "balance", channel="gate-ops")

Modules: :mod:`~gatebot.emulator.workspace` (state and Slack's rules; assembled from ``state``,
``directory``, ``conversations``, ``responses`` and ``views``, with the records in ``model`` and the Block
Kit rules in ``blockkit``), :mod:`~gatebot.emulator.web_api` (Starlette app),
:mod:`~gatebot.emulator.driver` (signed requests to the app; with ``transport``, ``actions``, ``modals``
and ``deliveries``), :mod:`~gatebot.emulator.server` (uvicorn on a loopback port, threaded or in-loop).

Must not import slack_bolt or slack_sdk (tests may, to check the emulator against them).
"""

from gatebot.emulator.driver import (
    AckTimeoutError,
    CommandResult,
    Delivery,
    OptionsResult,
    SlackDriver,
    SubmitResult,
    sign,
)
from gatebot.emulator.server import EmulatorServer, LoopbackServer, running_asgi, running_emulator
from gatebot.emulator.web_api import create_app
from gatebot.emulator.workspace import (
    ApiError,
    Call,
    Change,
    Channel,
    Ephemeral,
    FoundAction,
    Message,
    User,
    UserGroup,
    View,
    Workspace,
    find_action,
    find_actions,
)

__all__ = [
    "AckTimeoutError",
    "ApiError",
    "Call",
    "Change",
    "Channel",
    "CommandResult",
    "Delivery",
    "EmulatorServer",
    "Ephemeral",
    "FoundAction",
    "LoopbackServer",
    "Message",
    "OptionsResult",
    "SlackDriver",
    "SubmitResult",
    "User",
    "UserGroup",
    "View",
    "Workspace",
    "create_app",
    "find_action",
    "find_actions",
    "running_asgi",
    "running_emulator",
    "sign",
]
