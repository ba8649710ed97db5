"""The redaction filter and the one logging set-up: values the core registers, secret shapes, every library."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from gatebot import logs
from gatebot.config import Settings
from gatebot.logcontext import FIELDS, current, log_context
from gatebot.logs import RedactingFilter, configure_logging, redact, remember_content, remember_secrets
from gatebot.store.db import Database


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(logs, "_REGISTRY", logs._Registry())
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if getattr(h, "_gatebot_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(level)


def _logged(stream: io.StringIO) -> str:
    return stream.getvalue()


@pytest.mark.parametrize(("text", "expected"), [
    ("token xoxb-1234-5678-abcdef and xapp-1-A0-99", "token xoxb-*** and xapp-***"),
    ("headers: {'Authorization': 'Bearer abc.def'}", "headers: {'Authorization': '***'}"),
    ("Authorization: raw-gate-key-1", "Authorization: ***"),
    ("sent Bearer abc.def-ghi", "sent Bearer ***"),
    ('{"voucher_code": "AB12-CD34", "pin": 1234, "status": "completed"}',
     '{"voucher_code": "***", "pin": ***, "status": "completed"}'),
    ("json: {'code': 'Q', 'serial': 'S-1', 'text': 'hi'}", "json: {'code': '***', 'serial': '***', 'text': 'hi'}"),
    ('"private_metadata": "{\\"pin\\":\\"9\\",\\"c\\":\\"COPS\\"}"',
     '"private_metadata": "{\\"pin\\":\\"***\\",\\"c\\":\\"COPS\\"}"'),
    ('{"pin": "12\\"34", "n": 1}', '{"pin": "***", "n": 1}'),
    ("token=abc&channel=C1&api_key=k1", "token=***&channel=C1&api_key=***"),
    ('{"order_content": {"activation": {"x": "[y]"}, "l": [1]}, "status": "ok"}',
     '{"order_content": ***, "status": "ok"}'),
    ("'customer_account': {'login': 'bob'}, 'amount': '5'", "'customer_account': ***, 'amount': '5'"),
    ('body: {"id": 1, "order_content": {"activation": "ACT-77', 'body: {"id": 1, "order_content": ***'),
    ("nothing secret here: USD 5.00 at 12:00", "nothing secret here: USD 5.00 at 12:00"),
])
def test_secret_shapes_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_values_are_redacted_wherever_they_appear() -> None:
    remember_content({"activation": "ACT-7731-QWERTY", "steps": [{"pin": 8279}], "ok": True, "n": None})
    remember_secrets("joé \"the\" player", None, "", "ab")  # blanks and too-short values are ignored
    text = ("*Code:* `ACT-7731-QWERTY` PIN 8279; {'login': 'joé \"the\" player'} "
            '{"login": "jo\\u00e9 \\"the\\" player"}')
    assert redact(text) == "*Code:* `***` PIN ***; {'login': '***'} {\"login\": \"***\"}"


def test_plain_words_of_vendor_content_stay_readable() -> None:
    remember_content({"status": "delivered", "brand": "Steam", "code": "ABCDEFGH", "n": "ab12"},
                     skip_plain_words=True)
    assert redact("delivered Steam ABCDEFGH ab12") == "delivered Steam *** ***"


def test_short_values_need_word_boundaries() -> None:
    remember_secrets("8279")
    assert redact("pin 8279, ts 1795510891.827912, port 18279") == "pin ***, ts 1795510891.827912, port 18279"


def test_the_filter_freezes_the_redacted_record_and_its_traceback() -> None:
    remember_secrets("SECRET-CODE-1")
    stream = io.StringIO()
    configure_logging(level=logging.DEBUG, stream=stream)
    other = logging.getLogger("slack_sdk.web.async_base_client")  # a library's logger, not gatebot's
    other.debug("Sending a request - json: %s", {"text": "code SECRET-CODE-1", "token": "xoxb-1-2"})
    try:
        raise ValueError("bad SECRET-CODE-1")
    except ValueError:
        logging.getLogger("gatebot.x").exception("failed for %s", "SECRET-CODE-1")
    logged = _logged(stream)
    assert "SECRET-CODE-1" not in logged and "xoxb-1-2" not in logged
    assert "DEBUG slack_sdk.web.async_base_client: Sending a request - json: {'text': 'code ***', " in logged
    assert "ValueError: bad ***" in logged


def test_the_filter_sets_msg_and_clears_args() -> None:
    remember_secrets("PIN-CODE-99")
    record = logging.LogRecord("lib", logging.INFO, __file__, 1, "got %s", ("PIN-CODE-99",), None)
    assert RedactingFilter().filter(record)
    assert (record.msg, record.args) == ("got ***", ())
    broken = logging.LogRecord("lib", logging.INFO, __file__, 1, "%s %s", ("only one",), None)
    assert RedactingFilter().filter(broken)  # a bad format in some library: kept, without its arguments
    assert (broken.msg, broken.args) == ("(unformattable log message from lib, dropped)", ())


def test_configure_logging_registers_settings_secrets_and_account_field_names() -> None:
    settings = Settings(_env_file=None, gatebot_env="development", slack_signing_secret="signing-0123456789",
                        gate_api_url="https://gate.example", gate_api_key="live-gate-key-1",
                        gate_agent_id="6f1c2a3e-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
                        database_url="postgresql://bot:db-password-1@db/gatebot",
                        gatebot_account_fields={"steam": [{"name": "steam_login"}]})
    stream = io.StringIO()
    configure_logging(settings, level=logging.INFO, stream=stream)
    log = logging.getLogger("anything")
    log.info("%s %s %s", "signing-0123456789", "live-gate-key-1", "postgresql://bot:db-password-1@db/gatebot")
    log.info("form: %s", {"steam_login": "gabe", "amount": "5"})
    assert _logged(stream).splitlines() == [
        "INFO anything: *** *** postgresql://bot:***@db/gatebot",
        "INFO anything: form: {'steam_login': '***', 'amount': '5'}",
    ]


def test_configure_logging_replaces_only_its_own_handler() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    try:
        first = configure_logging(level=logging.INFO, stream=io.StringIO())
        second = configure_logging(level=logging.WARNING, stream=io.StringIO(), prefix="gatebot demo: ")
        assert first not in root.handlers and second in root.handlers and foreign in root.handlers
        assert root.level == logging.WARNING and logging.getLogger("alembic").level == logging.WARNING
        assert any(isinstance(f, RedactingFilter) for f in second.filters)
        assert second.formatter is not None and second.formatter._fmt is not None
        assert second.formatter._fmt.startswith("gatebot demo: ")
    finally:
        root.removeHandler(foreign)
    with pytest.raises(ValueError, match="unknown log format"):
        logs.formatter("yaml")  # type: ignore[arg-type]


def test_the_cli_logs_through_the_redacting_handler(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from gatebot.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEBOT_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    main(["db", "current"])
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "_gatebot_handler", False)]
    assert len(handlers) == 1 and any(isinstance(f, RedactingFilter) for f in handlers[0].filters)


# -- JSON lines (GATEBOT_LOG_FORMAT=json) and the context fields --------------------------------------------------


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_and_the_context() -> None:
    stream = io.StringIO()
    configure_logging(level=logging.INFO, stream=stream, fmt="json")
    log = logging.getLogger("gatebot.orders")
    with log_context(request_id="r1", slack_user="U1"), log_context(order="#7", external_ref="INV-7"):
        log.info("order %s placed", "#7")
    log.warning("outside")
    inside, outside = _json_lines(stream)
    assert inside["message"] == "order #7 placed"
    assert (inside["level"], inside["logger"]) == ("INFO", "gatebot.orders")
    assert datetime.fromisoformat(str(inside["time"])).utcoffset() == timedelta(0)
    assert {k: inside[k] for k in FIELDS if k in inside} == {"request_id": "r1", "slack_user": "U1",
                                                             "order": "#7", "external_ref": "INV-7"}
    assert not set(FIELDS) & outside.keys()


def test_json_exception_text_is_redacted_too() -> None:
    remember_secrets("SECRET-CODE-2")
    stream = io.StringIO()
    configure_logging(level=logging.INFO, stream=stream, fmt="json")
    try:
        raise ValueError("bad SECRET-CODE-2")
    except ValueError:
        logging.getLogger("gatebot.x").exception("failed for %s", "SECRET-CODE-2")
    (line,) = _json_lines(stream)
    assert line["message"] == "failed for ***"
    assert "ValueError: bad ***" in str(line["exc_info"])
    assert "SECRET-CODE-2" not in stream.getvalue()


def test_only_known_context_fields_are_accepted() -> None:
    with pytest.raises(ValueError, match="unknown log context field"), log_context(account="bob"):
        pass


async def test_the_context_travels_into_the_store_thread(tmp_path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'ctx.db'}")
    try:
        with log_context(job="balance_check"):
            seen = await db.run(lambda _s: dict(current()))
    finally:
        db.dispose()
    assert seen == {"job": "balance_check"}

