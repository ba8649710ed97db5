"""manifest.yml: valid against Slack's manifest schema (shared/tools/check-manifest) and consistent with
the ids the code uses (command, shortcut callback id, scopes, events, request URLs)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gatebot.slack import ids

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yml"
CHECKER = ROOT.parent / "shared" / "tools" / "check-manifest"
EVENTS_URL = "https://gatebot.example.com/slack/events"


@pytest.fixture(scope="module")
def manifest():
    return yaml.safe_load(MANIFEST.read_text())


@pytest.mark.skipif(
    not CHECKER.is_file(), reason=f"{CHECKER} not found: shared/ is not beside the repository"
)
def test_manifest_validates_against_slacks_schema():
    result = subprocess.run(
        [sys.executable, str(CHECKER), str(MANIFEST)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid Slack app manifest" in result.stdout


def test_manifest_ids_match_the_code(manifest):
    features = manifest["features"]
    [command] = features["slash_commands"]
    assert command["command"] == ids.COMMAND
    assert command["url"] == EVENTS_URL and command["should_escape"] is True
    assert command["usage_hint"].startswith("help | balance | order <ref>")
    [shortcut] = features["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"], shortcut["name"]) == (
        "message",
        ids.LOOKUP_ORDER,
        "Look up order",
    )
    assert manifest["oauth_config"]["scopes"]["bot"] == list(ids.BOT_SCOPES)
    assert "chat:write.public" not in ids.BOT_SCOPES
    assert manifest["settings"]["event_subscriptions"] == {
        "request_url": EVENTS_URL,
        "bot_events": list(ids.BOT_EVENTS),
    }


def test_manifest_settings(manifest):
    features, settings = manifest["features"], manifest["settings"]
    assert features["bot_user"]["always_online"] is False
    assert (
        features["app_home"]["home_tab_enabled"] is True
        and features["app_home"]["messages_tab_enabled"] is True
    )
    assert settings["interactivity"] == {
        "is_enabled": True,
        "request_url": EVENTS_URL,
        "message_menu_options_url": EVENTS_URL,
    }
    assert (
        settings["org_deploy_enabled"],
        settings["socket_mode_enabled"],
        settings["token_rotation_enabled"],
    ) == (False, False, False)
