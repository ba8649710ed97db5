"""Settings: defaults, environment, TOML, one line per problem, masking."""

import uuid
from decimal import Decimal

import pytest

from gatebot.config import SANDBOX_AGENT_ID, ConfigError, Thresholds, load_settings
from gatebot.money import Money
from gatebot.store.crypto import FernetCipher, PlainCipher

TEST_KEY = "6Qx0Vw3PlyP1yW9Jk0m7PgmFJq3oEw1r3XoCqXvV2hE="

pytestmark = pytest.mark.usefixtures("_clean_env")  # tests/conftest.py: no stray variables, .env, gatebot.toml


@pytest.fixture(autouse=True)
def _production_key(_clean_env, monkeypatch):
    monkeypatch.setenv("GATEBOT_ENCRYPTION_KEY", TEST_KEY)  # production (the default) requires one


def test_defaults_use_the_builtin_sandbox_and_sqlite():
    s = load_settings()
    assert s.uses_builtin_sandbox
    assert s.effective_agent_id == SANDBOX_AGENT_ID
    assert s.database_url.startswith("sqlite:///")
    assert s.port == 3000
    assert s.slack_api_url == "https://slack.com/api/"


def test_environment_names(monkeypatch):
    agent = str(uuid.uuid4())
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-token-123")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "abcdef0123456789")
    monkeypatch.setenv("SLACK_API_URL", "https://slack-gov.com/api/")
    monkeypatch.setenv("GATE_API_URL", "https://gate.example.com/api")
    monkeypatch.setenv("GATE_API_KEY", "live-key-abcdef123456")
    monkeypatch.setenv("GATE_AGENT_ID", agent)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db/gatebot")
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("GATEBOT_OPS", "U111, S222")
    monkeypatch.setenv("GATEBOT_LOW_BALANCE", "USD:500/100,EUR:300/50")
    s = load_settings()
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == "xoxb-secret-token-123"
    assert str(s.gate_agent_id) == agent
    assert s.database_url == "postgresql://u:pw@db/gatebot"
    assert s.port == 8080
    assert s.gatebot_ops == ["U111", "S222"]
    assert s.gatebot_low_balance["USD"] == Thresholds(Money.parse("500", "USD"), Money.parse("100", "USD"))
    masked = s.masked()
    assert "xoxb-secret-token-123" not in str(masked) and "live-key-abcdef123456" not in str(masked)
    assert "pw" not in masked["DATABASE_URL"]
    assert masked["GATE_API_URL"] == "https://gate.example.com/api"


def test_toml_file_is_read(tmp_path, monkeypatch):
    (tmp_path / "gatebot.toml").write_text('port = 4000\ngatebot_low_balance = {USD = "500/100"}\n'
                                           'gatebot_topup_margin = "0.25"\n')
    s = load_settings()
    assert s.port == 4000
    assert s.gatebot_topup_margin == Decimal("0.25")
    assert s.gatebot_low_balance["USD"].critical == Money.parse("100", "USD")
    monkeypatch.setenv("PORT", "5000")  # the environment wins over the file
    assert load_settings().port == 5000


def test_every_problem_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("GATE_AGENT_ID", "not-a-uuid")
    monkeypatch.setenv("PORT", "http")
    monkeypatch.setenv("GATEBOT_OPS", "alice")
    monkeypatch.setenv("GATEBOT_LOW_BALANCE", "USD:lots")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    problems = info.value.problems
    assert len(problems) == 5
    by_name = {p.split(":", 1)[0]: p for p in problems}
    assert set(by_name) == {"GATE_AGENT_ID", "PORT", "GATEBOT_OPS", "GATEBOT_LOW_BALANCE", "DATABASE_URL"}
    assert "UUID" in by_name["GATE_AGENT_ID"]
    assert all("\n" not in p for p in problems)


def test_remote_gate_needs_key_and_agent(monkeypatch):
    monkeypatch.setenv("GATE_API_URL", "https://gate.example.com")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "GATE_API_KEY and GATE_AGENT_ID must be set" in info.value.problems[0]


def test_critical_above_warning_is_refused(monkeypatch):
    monkeypatch.setenv("GATEBOT_LOW_BALANCE", "USD:100/500")
    with pytest.raises(ConfigError, match="GATEBOT_LOW_BALANCE"):
        load_settings()


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("PORT=4100\nGATEBOT_OPS=U1,U2\n")
    s = load_settings()
    assert s.port == 4100 and s.gatebot_ops == ["U1", "U2"]


REAL_GATE = {"GATE_API_URL": "https://gate.example.com/", "GATE_API_KEY": "k" * 24,
             "GATE_AGENT_ID": "6f1c2a3e-4b5d-4e6f-8a9b-0c1d2e3f4a5b"}


def _real_gate(monkeypatch):
    for name, value in REAL_GATE.items():
        monkeypatch.setenv(name, value)


def test_production_refuses_to_start_without_an_encryption_key(monkeypatch):
    monkeypatch.delenv("GATEBOT_ENCRYPTION_KEY")
    _real_gate(monkeypatch)
    with pytest.raises(ConfigError) as info:
        load_settings()
    (problem,) = info.value.problems
    assert problem.startswith("GATEBOT_ENCRYPTION_KEY: required in production")
    assert 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"' in problem
    assert "\n" not in problem
    monkeypatch.setenv("GATEBOT_ENCRYPTION_KEY", " ")  # blank is not a key either
    with pytest.raises(ConfigError, match="GATEBOT_ENCRYPTION_KEY: required in production"):
        load_settings()


@pytest.mark.parametrize("command", ["check", "orders", "serve", "clock", "recover"])
def test_every_production_command_refuses_without_a_key(monkeypatch, capsys, tmp_path, command):
    from gatebot.cli import main

    monkeypatch.delenv("GATEBOT_ENCRYPTION_KEY")
    _real_gate(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'refused.db'}")
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert "gatebot: GATEBOT_ENCRYPTION_KEY: required in production" in err
    assert "Fernet.generate_key()" in err and "Traceback" not in err
    assert not (tmp_path / "refused.db").exists(), "nothing was started"


def test_the_built_in_sandbox_needs_no_key_even_in_production(monkeypatch, caplog):
    """Its codes are made up: the README's first commands work in an empty folder on the defaults."""
    from gatebot.runtime import build_cipher

    monkeypatch.delenv("GATEBOT_ENCRYPTION_KEY")
    settings = load_settings()
    assert settings.is_production and settings.uses_builtin_sandbox
    assert isinstance(build_cipher(settings), PlainCipher)
    assert not caplog.records


def test_development_needs_no_key_and_says_nothing(monkeypatch, caplog):
    from gatebot.runtime import build_cipher

    monkeypatch.delenv("GATEBOT_ENCRYPTION_KEY")
    assert isinstance(build_cipher(load_settings(gatebot_env="development")), PlainCipher)
    assert not caplog.records


def test_plaintext_opt_out_starts_but_warns_loudly_every_time(monkeypatch, caplog):
    from gatebot.runtime import build_cipher

    monkeypatch.delenv("GATEBOT_ENCRYPTION_KEY")
    _real_gate(monkeypatch)
    monkeypatch.setenv("GATEBOT_ALLOW_PLAINTEXT_SECRETS", "true")
    settings = load_settings()
    for _ in range(2):
        assert isinstance(build_cipher(settings), PlainCipher)
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
    message = caplog.records[0].getMessage()
    assert "GATEBOT_ALLOW_PLAINTEXT_SECRETS" in message and "UNENCRYPTED" in message


def test_a_production_key_encrypts(caplog):
    from gatebot.runtime import build_cipher

    assert isinstance(build_cipher(load_settings()), FernetCipher) and not caplog.records


def test_settings_built_around_load_settings_still_refuse_at_startup():
    from gatebot.config import Settings
    from gatebot.runtime import build_cipher

    with pytest.raises(ConfigError, match="GATEBOT_ENCRYPTION_KEY: required in production"):
        build_cipher(Settings.model_validate({"_env_file": None, "gatebot_encryption_key": None,
                                              **{k.lower(): v for k, v in REAL_GATE.items()}}))


# -- approvals and limits (issue 13) -------------------------------------------------------------------------
def test_approval_policy_defaults_change_nothing():
    from gatebot.orders import ApprovalPolicy

    s = load_settings(gatebot_env="development")
    policy = ApprovalPolicy.from_settings(s)
    assert policy.approval_over == {} and policy.daily_limits == () and policy.over_limit == "refuse"
    assert policy.approver_roles == {"finance", "admin"} and policy.ttl.total_seconds() == 24 * 3600
    assert s.masked()["GATEBOT_DAILY_LIMIT"] == "(none)"


def test_approval_settings_from_the_environment(monkeypatch):
    from gatebot.config import SpendLimit

    monkeypatch.setenv("GATEBOT_APPROVAL_OVER", "usd:1000, EUR:800")
    monkeypatch.setenv("GATEBOT_DAILY_LIMIT", "user:USD:500,role:ops:USD:5000")
    monkeypatch.setenv("GATEBOT_APPROVER_ROLES", "Finance")
    monkeypatch.setenv("GATEBOT_CLI_APPROVERS", "cli:alice")
    monkeypatch.setenv("GATEBOT_OVER_LIMIT", "approval")
    monkeypatch.setenv("GATEBOT_APPROVAL_TTL", "90m")
    s = load_settings(gatebot_env="development")
    assert s.gatebot_approval_over == {"USD": Money.parse("1000", "USD"), "EUR": Money.parse("800", "EUR")}
    assert s.gatebot_daily_limit == [SpendLimit(Money.parse("500", "USD")),
                                     SpendLimit(Money.parse("5000", "USD"), role="ops")]
    assert s.gatebot_approver_roles == ["finance"] and s.gatebot_cli_approvers == ["cli:alice"]
    assert (s.gatebot_over_limit, s.gatebot_approval_ttl) == ("approval", 5400)
    assert s.masked()["GATEBOT_DAILY_LIMIT"] == "USD 500.00 per person,USD 5,000.00 role ops"


def test_approval_settings_from_toml(tmp_path, monkeypatch):
    (tmp_path / "gatebot.toml").write_text('gatebot_approval_over = "USD:1000"\n'
                                           'gatebot_daily_limit = ["user:USD:500"]\ngatebot_approval_ttl = 3600\n')
    monkeypatch.chdir(tmp_path)
    s = load_settings(gatebot_env="development")
    assert s.gatebot_approval_over == {"USD": Money.parse("1000", "USD")}
    assert len(s.gatebot_daily_limit) == 1 and s.gatebot_approval_ttl == 3600


def test_bad_approval_settings_are_one_line_each(monkeypatch):
    monkeypatch.setenv("GATEBOT_APPROVAL_OVER", "USD:lots")
    monkeypatch.setenv("GATEBOT_DAILY_LIMIT", "role:boss:USD:5")
    monkeypatch.setenv("GATEBOT_APPROVAL_TTL", "10s")
    with pytest.raises(ConfigError) as info:
        load_settings(gatebot_env="development")
    names = [line.split(":", 1)[0] for line in info.value.problems]
    assert names == ["GATEBOT_APPROVAL_OVER", "GATEBOT_DAILY_LIMIT", "GATEBOT_APPROVAL_TTL"]
    assert "unknown role 'boss'" in info.value.problems[1]
