"""The edge's pure parts: strict signature headers, the signature itself, and parsing by content type.

The whole endpoint is driven over HTTP in ``tests/scenarios/test_edge.py``; these pin the rules.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from gatebot.slack.edge import MAX_DEPTH, MAX_SKEW, Refusal, check_signature, check_signature_headers, parse_body

# Slack's published test vector ("Verifying requests from Slack").
VECTOR_SECRET = b"8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TS = "1531420618"
VECTOR_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
FORM = "application/x-www-form-urlencoded"


def headers(ts: str = VECTOR_TS, sig: str = VECTOR_SIG) -> dict[str, str]:
    return {"x-slack-request-timestamp": ts, "x-slack-signature": sig}


def test_slacks_test_vector_verifies() -> None:
    ts, sig = check_signature_headers(headers(), now=float(VECTOR_TS) + MAX_SKEW)
    check_signature(VECTOR_SECRET, ts, sig, VECTOR_BODY)
    with pytest.raises(Refusal) as info:
        check_signature(VECTOR_SECRET, ts, sig, VECTOR_BODY + b"&x=1")
    assert info.value.status == 401


ARABIC_INDIC = "".join(chr(0x0660 + int(d)) for d in VECTOR_TS)  # int() accepts these digits


@pytest.mark.parametrize("ts", ["abc", "", "-1531420618", "+1531420618", "1531420618.0", "1_531_420_618",
                                " 1531420618", "1531420618 ", ARABIC_INDIC, "9" * 40, "0x5B47A0CA"])
def test_timestamps_must_be_plain_decimal_integers(ts: str) -> None:
    with pytest.raises(Refusal) as info:
        check_signature_headers(headers(ts=ts), now=float(VECTOR_TS))
    assert info.value.status == 401 and info.value.close, "refused before the body is read"


@pytest.mark.parametrize("skew", [-MAX_SKEW - 1, MAX_SKEW + 1])
def test_timestamps_must_be_within_five_minutes(skew: int) -> None:
    with pytest.raises(Refusal):
        check_signature_headers(headers(), now=float(VECTOR_TS) + skew)


@pytest.mark.parametrize("sig", ["", "v0=x", VECTOR_SIG.upper(), "v1=" + VECTOR_SIG[3:], VECTOR_SIG + "0"])
def test_signatures_must_be_v0_and_64_hex_digits(sig: str) -> None:
    with pytest.raises(Refusal):
        check_signature_headers(headers(sig=sig), now=float(VECTOR_TS))


def test_missing_headers_are_refused() -> None:
    with pytest.raises(Refusal, match="missing"):
        check_signature_headers({}, now=0.0)


# -- parsing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["order payload-77", "payload", "payload=1", '{"type": "block_actions"}'])
def test_a_slash_command_is_plain_fields_whatever_it_says(text: str) -> None:
    fields = {"command": "/gate", "text": text, "channel_name": "payload-ops", "user_name": "payload-pete"}
    assert parse_body(urlencode(fields).encode(), FORM) == fields


def test_a_payload_field_is_interactivity() -> None:
    payload = {"type": "block_actions", "actions": [{"value": "payload"}]}
    assert parse_body(urlencode({"payload": json.dumps(payload)}).encode(), f"{FORM}; charset=utf-8") == payload


def test_json_bodies_must_be_objects() -> None:
    event = {"type": "event_callback", "event": {"type": "app_home_opened"}}
    assert parse_body(json.dumps(event).encode(), "application/json") == event


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_nesting_is_bounded() -> None:
    assert parse_body(json.dumps(nested(MAX_DEPTH)).encode(), "application/json")
    with pytest.raises(Refusal, match="nested deeper"):
        parse_body(json.dumps(nested(MAX_DEPTH + 1)).encode(), "application/json")


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"payload={bad", FORM, 400),
    (b"payload=null", FORM, 400),
    (b"payload=%5B1%5D", FORM, 400),
    (b"[]", "application/json", 400),
    (b"[" * 100_000, "application/json", 400),
    (b'{"n": Infinity}', "application/json", 400),
    (b'{"n": 1' + b"0" * 5000 + b"}", "application/json", 400),
    (b"text=\xff", FORM, 400),
    (b"text=%ff", FORM, 400),
    (b"text=a\x00", FORM, 400),
    (b"text=a%00", FORM, 400),
    (b'{"a": "\\u0000"}', "application/json", 400),
    (b"&".join(b"f%d=1" % i for i in range(200)), FORM, 400),
    (b"", FORM, 400),
    (b"{}", "text/plain", 415),
    (b"{}", None, 415),
])
def test_malformed_bodies_are_refused(body: bytes, content_type: str | None, status: int) -> None:
    with pytest.raises(Refusal) as info:
        parse_body(body, content_type)
    assert info.value.status == status and not info.value.close
