"""Settings: environment variables, an optional ``.env`` file and an optional TOML file.

Precedence, highest first: keyword arguments, environment, ``.env``, TOML (``GATEBOT_CONFIG``, default
``./gatebot.toml`` when it exists). Every field's environment name is its name in upper case
(``gate_agent_id`` ← ``GATE_AGENT_ID``); TOML keys are the lower-case names.

:func:`load_settings` turns every validation problem into one line naming the variable and what is
expected, raised as :class:`ConfigError` — the CLI prints those lines, never a traceback. It also
applies the production rules (:func:`production_problems`): production needs ``GATEBOT_ENCRYPTION_KEY``
unless ``GATEBOT_ALLOW_PLAINTEXT_SECRETS=true`` says, loudly, that it may store secrets in plain text.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import json
import os
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gatebot.money import Money, MoneyError

__all__ = [
    "KEY_COMMAND",
    "SANDBOX_AGENT_ID",
    "SANDBOX_API_KEY",
    "ConfigError",
    "Settings",
    "SpendLimit",
    "Thresholds",
    "load_settings",
    "needs_encryption_key",
    "production_problems",
]

#: Credentials of the built-in sandbox (not secrets: the sandbox is a local simulator).
SANDBOX_API_KEY = "sandbox-key-0000"
SANDBOX_AGENT_ID = uuid.UUID("6f1c2a3e-4b5d-4e6f-8a9b-0c1d2e3f4a5b")

#: The command that prints a new ``GATEBOT_ENCRYPTION_KEY``.
KEY_COMMAND = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'

CommaList = Annotated[list[str], NoDecode]


class ConfigError(Exception):
    """Bad configuration. ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Thresholds:
    """Low-balance levels for one currency: warn at or below ``warning``, critical at ``critical``."""

    __slots__ = ("critical", "warning")

    def __init__(self, warning: Money, critical: Money) -> None:
        if critical > warning:
            raise MoneyError(f"critical level {critical} is above the warning level {warning}")
        self.warning = warning
        self.critical = critical

    def __repr__(self) -> str:
        return f"Thresholds({self.warning}, {self.critical})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thresholds) and (self.warning, self.critical) == (other.warning, other.critical)

    def __hash__(self) -> int:
        return hash((self.warning, self.critical))


class SpendLimit:
    """A daily spending limit: for each person (``role is None``) or shared by everyone holding ``role``."""

    __slots__ = ("limit", "role")

    def __init__(self, limit: Money, role: str | None = None) -> None:
        self.limit = limit
        self.role = role

    @property
    def scope(self) -> str:
        """How people read it: ``per person`` or ``role ops``."""
        return "per person" if self.role is None else f"role {self.role}"

    def __repr__(self) -> str:
        return f"SpendLimit({self.scope}, {self.limit})"

    def __str__(self) -> str:
        return f"{self.limit} {self.scope}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpendLimit) and (self.limit, self.role) == (other.limit, other.role)

    def __hash__(self) -> int:
        return hash((self.limit, self.role))


_ROLE_NAMES = frozenset({"ops", "finance", "support", "admin"})
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _toml_path() -> Path | None:
    path = Path(os.environ.get("GATEBOT_CONFIG", "gatebot.toml"))
    return path if path.is_file() else None


class Settings(BaseSettings):
    """Everything gatebot can be configured with. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False,
        validate_default=True,
    )

    # -- Slack ------------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    # -- Gate API (all unset: the built-in sandbox, in-process) -------------------------------------
    gate_api_url: str | None = None
    gate_api_key: SecretStr | None = None
    gate_agent_id: uuid.UUID | None = None
    gate_timeout: float = Field(default=10.0, gt=0, le=120)
    gate_connect_timeout: float = Field(default=3.0, gt=0, le=60)

    # -- Store and serving --------------------------------------------------------------------------
    database_url: str = "sqlite:///gatebot.db"
    port: int = Field(default=3000, ge=1, le=65535)
    gatebot_metrics_port: int | None = Field(default=None, ge=1, le=65535)  # gatebot clock's GET /metrics
    gatebot_env: Literal["production", "development"] = "production"
    gatebot_encryption_key: SecretStr | None = None
    #: Production without an encryption key stores voucher codes and account fields in plain text: refused
    #: unless this says so explicitly (and every start then warns).
    gatebot_allow_plaintext_secrets: bool = False
    gatebot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    gatebot_log_format: Literal["text", "json"] = "text"
    #: Largest request body ``POST /slack/events`` accepts (Slack's are a few KB); larger: HTTP 413.
    gatebot_max_body_bytes: int = Field(default=1024 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)
    #: Bearer token for ``GET /healthz``'s detailed report (unset: liveness answer only).
    gatebot_health_token: SecretStr | None = None
    #: Bearer token ``GET /metrics`` on ``gatebot serve`` asks for (unset: open, for a private network).
    gatebot_metrics_token: SecretStr | None = None

    # -- Roles (Slack user ids U… / W… and user-group ids S…) ---------------------------------------
    gatebot_ops: CommaList = Field(default_factory=list)
    gatebot_finance: CommaList = Field(default_factory=list)
    gatebot_support: CommaList = Field(default_factory=list)
    gatebot_admins: CommaList = Field(default_factory=list)
    #: Roles (besides the requester) that may see voucher codes in lookups.
    gatebot_code_roles: CommaList = Field(default_factory=lambda: ["admin"])

    # -- Orders ---------------------------------------------------------------------------------------
    gatebot_resume_on_deposit: bool = True
    #: Fallback top-up margin rate used for the cost estimate when a product does not publish one.
    gatebot_topup_margin: Decimal = Field(default=Decimal("0"), ge=0, le=1)
    #: Customer-account fields per product id or slug, for products that do not publish them (JSON).
    gatebot_account_fields: Annotated[dict[str, list[dict[str, Any]]], NoDecode] = Field(default_factory=dict)

    # -- Approvals and spending limits (README "Approvals and limits"; unset: no approvals, no limits) ---
    #: Per currency: an order whose estimated cost is strictly over this needs a second person's approval.
    gatebot_approval_over: Annotated[dict[str, Money], NoDecode] = Field(default_factory=dict)
    #: Roles whose members may approve (never their own orders).
    gatebot_approver_roles: CommaList = Field(default_factory=lambda: ["finance", "admin"])
    #: CLI identities (``cli:<name>``) that count as approvers in ``gatebot approve|reject --as``.
    gatebot_cli_approvers: CommaList = Field(default_factory=list)
    #: Daily (rolling 24 h) limits: ``user:USD:500`` per person, ``role:ops:USD:5000`` shared by a role.
    gatebot_daily_limit: Annotated[list[SpendLimit], NoDecode] = Field(default_factory=list)
    #: What an order over a daily limit gets: refused, or sent for approval.
    gatebot_over_limit: Literal["refuse", "approval"] = "refuse"
    #: How long an approval request stays open (seconds, or 90m / 24h / 2d).
    gatebot_approval_ttl: int = Field(default=24 * 3600, ge=60, le=30 * 86400)
    #: Where approval requests are posted with their Approve / Reject buttons (unset: the alert channel).
    gatebot_approval_channel: str | None = None

    # -- Bulk orders (README "Bulk orders") ---------------------------------------------------------------
    #: Rows of a bulk batch sent to Gate per second.
    gatebot_bulk_rate: float = Field(default=5.0, gt=0, le=100)
    #: How long the requester can download a finished batch's results (seconds, or 90m / 24h / 7d).
    gatebot_bulk_results_ttl: int = Field(default=7 * 86400, ge=60, le=90 * 86400)

    # -- Alerting ---------------------------------------------------------------------------------------
    gatebot_alert_channel: str | None = None
    gatebot_finance_channel: str | None = None
    gatebot_low_balance: Annotated[dict[str, Thresholds], NoDecode] = Field(default_factory=dict)
    gatebot_alert_fire_after: int = Field(default=3, ge=1)
    gatebot_alert_clear_after: int = Field(default=2, ge=1)
    gatebot_alert_clear_margin: Decimal = Field(default=Decimal("0.10"), ge=0, le=1)
    gatebot_alert_repeat: int = Field(default=4 * 3600, ge=60)
    gatebot_health_fail_after: int = Field(default=3, ge=1)

    # -- Job intervals (seconds) -------------------------------------------------------------------------
    gatebot_catalog_interval: int = Field(default=3600, ge=1)
    gatebot_track_interval: int = Field(default=30, ge=1)
    gatebot_recover_interval: int = Field(default=60, ge=1)
    gatebot_balance_interval: int = Field(default=300, ge=1)
    gatebot_health_interval: int = Field(default=60, ge=1)
    gatebot_deposit_interval: int = Field(default=300, ge=1)
    gatebot_approval_interval: int = Field(default=60, ge=1)
    gatebot_bulk_interval: int = Field(default=5, ge=1)
    gatebot_digest_hour: int = Field(default=8, ge=0, le=23)
    gatebot_run_jobs: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml = _toml_path()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    # -- validators -------------------------------------------------------------------------------------
    @field_validator("gatebot_ops", "gatebot_finance", "gatebot_support", "gatebot_admins", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for item in value:
                if not (isinstance(item, str) and item[:1] in ("U", "W", "S") and item[1:].isalnum()):
                    raise ValueError(f"{item!r} is not a Slack user id (U…/W…) or user-group id (S…)")
        return value

    @field_validator("gatebot_code_roles", "gatebot_approver_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",") if part.strip()]
        allowed = {"ops", "finance", "support", "admin"}
        if isinstance(value, list) and not set(value) <= allowed:
            raise ValueError(f"roles must be among {', '.join(sorted(allowed))}")
        return value

    @field_validator("gatebot_cli_approvers", mode="before")
    @classmethod
    def _split_cli_approvers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for item in value:
                if not (isinstance(item, str) and item.startswith("cli:") and len(item) > 4):
                    raise ValueError(f"{item!r} is not a CLI identity; write cli:<name>, like cli:alice")
        return value

    @field_validator("gatebot_approval_over", mode="before")
    @classmethod
    def _approval_over(cls, value: Any) -> Any:
        if isinstance(value, dict):
            items = [f"{cur}:{amount}" for cur, amount in value.items()]
        elif isinstance(value, str):
            items = [part.strip() for part in value.split(",") if part.strip()]
        else:
            return value
        result: dict[str, Money] = {}
        for item in items:
            currency, colon, amount = item.partition(":")
            code = currency.strip().upper()
            if not colon or not amount.strip():
                raise ValueError(f"{item!r} has no amount; write CUR:amount like USD:1000")
            try:
                result[code] = Money.parse(amount.strip(), code)
            except MoneyError as exc:
                raise ValueError(f"{item!r}: {exc} (the format is CUR:amount, like USD:1000)") from None
        return result

    @field_validator("gatebot_daily_limit", mode="before")
    @classmethod
    def _daily_limits(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            return value
        result: list[SpendLimit] = []
        hint = "write user:CUR:amount or role:<role>:CUR:amount, like user:USD:500 or role:ops:USD:5000"
        for item in value:
            if isinstance(item, SpendLimit):
                result.append(item)
                continue
            parts = [p.strip() for p in str(item).split(":")]
            if parts[0].lower() == "user" and len(parts) == 3:
                role, (code, amount) = None, parts[1:]
            elif parts[0].lower() == "role" and len(parts) == 4:
                role, code, amount = parts[1].lower(), parts[2], parts[3]
                if role not in _ROLE_NAMES:
                    raise ValueError(f"{item!r}: unknown role {role!r} (roles: {', '.join(sorted(_ROLE_NAMES))})")
            else:
                raise ValueError(f"{item!r}: {hint}")
            try:
                result.append(SpendLimit(Money.parse(amount, code.upper()), role))
            except MoneyError as exc:
                raise ValueError(f"{item!r}: {exc} ({hint})") from None
        return result

    @field_validator("gatebot_approval_ttl", "gatebot_bulk_results_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip()[-1:].lower() in _DURATION_UNITS:
            number = value.strip()[:-1]
            if not number.isdigit():
                raise ValueError(f"{value!r} is not a duration; write seconds or 90m, 24h, 2d")
            return int(number) * _DURATION_UNITS[value.strip()[-1].lower()]
        return value

    @field_validator("gatebot_account_fields", mode="before")
    @classmethod
    def _json_fields(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError:
                raise ValueError('expected JSON like {"steam-wallet": [{"name": "steam_login"}]}') from None
        return value

    @field_validator("gatebot_low_balance", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> Any:
        if isinstance(value, dict):
            items = [f"{cur}:{levels}" for cur, levels in value.items()]
        elif isinstance(value, str):
            items = [part.strip() for part in value.split(",") if part.strip()]
        else:
            return value
        result: dict[str, Thresholds] = {}
        for item in items:
            currency, colon, levels = item.partition(":")
            warn, _, crit = levels.partition("/")
            code = currency.strip().upper()
            if not colon or not warn.strip():
                raise ValueError(f"{item!r} has no levels; write CUR:warning/critical like USD:500/100")
            try:
                result[code] = Thresholds(Money.parse(warn.strip(), code), Money.parse((crit or "0").strip(), code))
            except MoneyError as exc:  # its message names the bad part, never Python internals
                raise ValueError(f"{item!r}: {exc} (the format is CUR:warning/critical, like USD:500/100)") from None
        return result

    @field_validator("slack_api_url", "gate_api_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("expected sqlite:///path.db or postgresql://user@host/db")
        if value.startswith("postgres:"):
            value = "postgresql:" + value[len("postgres:"):]
        return value

    @model_validator(mode="after")
    def _gate_credentials(self) -> Settings:
        if self.gate_api_url and (self.gate_api_key is None or self.gate_agent_id is None):
            missing = [n for n, v in (("GATE_API_KEY", self.gate_api_key), ("GATE_AGENT_ID", self.gate_agent_id))
                       if v is None]
            raise ValueError(f"GATE_API_URL is set, so {' and '.join(missing)} must be set too")
        return self

    # -- derived ----------------------------------------------------------------------------------------
    @property
    def uses_builtin_sandbox(self) -> bool:
        return not self.gate_api_url

    @property
    def effective_gate_key(self) -> str:
        return self.gate_api_key.get_secret_value() if self.gate_api_key else SANDBOX_API_KEY

    @property
    def effective_agent_id(self) -> uuid.UUID:
        return self.gate_agent_id or SANDBOX_AGENT_ID

    @property
    def is_production(self) -> bool:
        return self.gatebot_env == "production"

    @property
    def has_encryption_key(self) -> bool:
        key = self.gatebot_encryption_key
        return key is not None and bool(key.get_secret_value().strip())

    def masked(self) -> dict[str, str]:
        """Every setting as ``ENV_NAME -> text`` with secrets masked, for ``gatebot check``."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                text = f"set ({len(secret)} chars, ends …{secret[-2:]})" if len(secret) >= 12 else "set"
            elif value is None:
                text = "(unset)"
            elif isinstance(value, list):
                text = ",".join(map(str, value)) or "(none)"
            elif isinstance(value, dict):
                text = ", ".join(f"{k}: {v}" for k, v in value.items()) or "(none)"
            elif name == "database_url":
                text = _mask_url_password(str(value))
            else:
                text = str(value)
            out[name.upper()] = text
        return out


def _mask_url_password(url: str) -> str:
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


_EXPECTED_HINTS = {
    "gate_agent_id": "a UUID such as 6f1c2a3e-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
    "port": "a TCP port number 1-65535",
}


def needs_encryption_key(settings: Settings) -> bool:
    """Production against a real Gate (``GATE_API_URL`` set) stores real codes and accounts: a key is
    required. The built-in sandbox's codes are made up, so a first try in an empty folder needs none."""
    return settings.is_production and not settings.uses_builtin_sandbox


def production_problems(settings: Settings) -> list[str]:
    """What production refuses to start with, one line each (empty outside production)."""
    if needs_encryption_key(settings) and not settings.has_encryption_key \
            and not settings.gatebot_allow_plaintext_secrets:
        return [
            "GATEBOT_ENCRYPTION_KEY: required in production, or voucher codes and customer-account fields "
            f"are stored in plain text; make one with: {KEY_COMMAND}"
        ]
    return []


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation errors into a :class:`ConfigError` of one line each.

    The production rules are checked here rather than in a model validator so that tests and tools can
    still build a bare :class:`Settings`; every command goes through this function, and
    :func:`gatebot.runtime.build_cipher` checks the same rule again before anything is stored.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
            name = loc[0].upper() if loc else ""
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
            hint = _EXPECTED_HINTS.get(loc[0]) if loc else None
            received = err.get("input")
            if hint and name:
                problems.append(f"{name}: expected {hint}, got {received!r}" if isinstance(received, str)
                                else f"{name}: expected {hint}")
            elif name:
                problems.append(f"{name}: {msg}")
            else:
                problems.append(msg)
        raise ConfigError(problems) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML / .env
        raise ConfigError([f"configuration file: {exc}"]) from None
    problems = production_problems(settings)
    if problems:
        raise ConfigError(problems)
    return settings
