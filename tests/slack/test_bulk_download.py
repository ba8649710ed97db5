"""Downloading the file a person picked in the bulk modal: only from Slack, only with the bot token, capped;
each way it can fail is one sentence for the modal (gatebot.slack.listeners.bulk.download)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.emulator import EmulatorServer, Workspace, running_emulator
from gatebot.slack.listeners import bulk

CSV = b"product,quantity,amount,external_ref\n101,1,,REF-1\n"


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with running_emulator(Workspace.sample()) as server:
        yield server


def picked(server: EmulatorServer, content: bytes = CSV) -> dict[str, object]:
    ws = server.workspace
    return ws.upload_file("UALICE", "june.csv", content).to_dict(server.base_url, ws.team_id)


def bot(server: EmulatorServer, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(base_url=server.api_url, token=token or server.workspace.bot_token)


async def test_the_bot_token_fetches_the_bytes(emulator: EmulatorServer) -> None:
    assert await bulk.download(bot(emulator), picked(emulator)) == CSV


async def test_slack_sign_in_page_means_the_files_read_scope_is_missing(emulator: EmulatorServer) -> None:
    said = await bulk.download(bot(emulator, "xoxb-not-this-app"), picked(emulator))
    assert isinstance(said, str) and "files:read" in said


async def test_a_file_slack_does_not_have_is_not_handed_over(emulator: EmulatorServer) -> None:
    file = picked(emulator)
    file["url_private_download"] = str(file["url_private_download"]).replace("F00000001", "F09999999")
    said = await bulk.download(bot(emulator), file)
    assert isinstance(said, str) and "did not hand over the file (HTTP 404)" in said


async def test_the_token_never_goes_to_a_host_that_is_not_slack(emulator: EmulatorServer) -> None:
    for url in ("https://files.example.com/june.csv", "http://files.slack.com/june.csv", ""):
        said = await bulk.download(bot(emulator), {"url_private_download": url})
        assert said == "Slack gave no address gatebot may download the file from."


async def test_a_file_over_the_cap_is_refused_while_it_streams(emulator: EmulatorServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_BYTES", 1024 * 1024)
    said = await bulk.download(bot(emulator), picked(emulator, b"x" * (1024 * 1024 + 1)))
    assert said == "The file is larger than 1 MB; split it into several."


async def test_slack_out_of_reach_is_a_sentence_not_a_traceback(emulator: EmulatorServer) -> None:
    with socket.socket() as s:  # a port nobody listens on: the same origin as the Web API, closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AsyncWebClient(base_url=f"http://127.0.0.1:{port}/api/", token="xoxb-1")
    said = await bulk.download(client, {"url_private_download": f"http://127.0.0.1:{port}/files-pri/x/download/a.csv"})
    assert said == "The file could not be downloaded from Slack; try again in a moment."
