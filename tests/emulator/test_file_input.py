"""A person's file in a modal's ``file_input``: Slack's file object in the view state, and its
``url_private_download`` — the bytes with the bot token, Slack's HTML sign-in page without it."""

from __future__ import annotations

import httpx
import pytest

from gatebot.emulator import EmulatorServer, Workspace
from gatebot.emulator.files import SIGN_IN_PAGE

FORM = {"type": "modal", "callback_id": "bulk", "title": {"type": "plain_text", "text": "Bulk"},
        "submit": {"type": "plain_text", "text": "Check"},
        "blocks": [{"type": "input", "block_id": "f", "label": {"type": "plain_text", "text": "File"},
                    "element": {"type": "file_input", "action_id": "f", "filetypes": ["csv"], "max_files": 1}}]}


async def test_a_picked_file_is_in_the_view_state_and_downloads_only_with_the_bot_token(
        emulator: EmulatorServer, workspace: Workspace) -> None:
    view = workspace.open_view(workspace.issue_trigger("UBOB"), FORM)
    assert workspace.view_dict(view)["state"]["values"]["f"]["f"] == {"type": "file_input", "files": []}
    driver = emulator.driver("http://127.0.0.1:9/slack/events", "secret")
    try:
        picked = workspace.upload_file("UBOB", "june.csv", b"product,external_ref\r\n101,A-1\r\n")
        with pytest.raises(ValueError, match="at most 1"):
            driver.set_input(view, "f", "f", [picked, picked])
        with pytest.raises(ValueError, match=r"does not take \.txt"):
            driver.set_input(view, "f", "f", [workspace.upload_file("UBOB", "notes.txt", b"x")])
        driver.set_input(view, "f", "f", [picked])
    finally:
        await driver.aclose()
    file = workspace.view_dict(view)["state"]["values"]["f"]["f"]["files"][0]
    assert file["id"] == picked.id and file["name"] == "june.csv" and file["filetype"] == "csv"
    assert file["user"] == "UBOB" and file["size"] == len(picked.content or b"")
    assert file["url_private_download"].startswith(emulator.base_url + "/files-pri/")
    async with httpx.AsyncClient() as http:
        ok = await http.get(file["url_private_download"], headers={"Authorization": f"Bearer {workspace.bot_token}"})
        anonymous = await http.get(file["url_private"])
        missing = await http.get(file["url_private"].replace(picked.id, "F99999999"))
    assert ok.status_code == 200 and ok.content == picked.content and ok.headers["content-type"].startswith("text/csv")
    assert anonymous.status_code == 200 and anonymous.text == SIGN_IN_PAGE  # as Slack: no error, a login page
    assert anonymous.headers["content-type"].startswith("text/html")
    assert missing.status_code == 404
