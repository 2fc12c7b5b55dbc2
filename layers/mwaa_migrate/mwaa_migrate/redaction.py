"""What is never shown: the values of Airflow configuration options, and secret-looking values in
free text (a failing task's last log lines, a web server's error message) on their way to an
execution's cause, its history, the report and the notifications.

Configuration options: botocore's MWAA model marks `AirflowConfigurationOptions` and every value in
it `sensitive`, and an option's name says little about what its value holds (`secrets.backend_kwargs`
carries credentials, `smtp.smtp_host` may too): every value is secret except the few on
HARMLESS_OPTIONS. Free text: a pattern list, best effort; each pattern keeps the text's shape (the
key, the URI's user and host) so the line still says what failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# What a secret value is replaced with wherever a plan, a report, a cause or a message is shown.
REDACTED = "****"

# Options whose values are shown, each because the migration itself reads or changes it and its value
# is no secret: the pipeline sets core.dags_are_paused_at_creation (a boolean) on every target, and
# config_migration moves secrets.backend (a class path; its credentials are in backend_kwargs) to the
# providers' module. Every other option's value is REDACTED.
HARMLESS_OPTIONS = frozenset({"core.dags_are_paused_at_creation", "secrets.backend"})

CONFIGURATION_OPTIONS = "AirflowConfigurationOptions"

# Names (of tags, settings, keys in a log line) whose values are secrets: Airflow's own list of
# sensitive field names (password, secret, token, api key, private key, passphrase ...), plus what
# carries them (backend kwargs, connection strings) and the Fernet key.
SECRET_NAME = re.compile(
    r"password|passwd|secret|token|credential|private|fernet|api_?key|apikey|access_?key|passphrase"
    r"|authorization|kwargs|sql_alchemy_conn|conn_?uri|connection_?string|keyfile|service_account",
    re.IGNORECASE,
)


def shown_option(option: str, value: str) -> str:
    """An Airflow configuration option's value as it may be shown."""
    return value if option in HARMLESS_OPTIONS else REDACTED


def shown_options(options: Mapping[str, str]) -> dict[str, str]:
    """Airflow configuration options with every value not on HARMLESS_OPTIONS REDACTED."""
    return {option: shown_option(option, value) for option, value in options.items()}


def is_sensitive(path: str) -> bool:
    """True for a setting (a dotted path in CreateEnvironment's shape) whose value must not be shown:
    every Airflow configuration option but the harmless ones, and any other setting whose own name
    (the path's last part, e.g. a tag's key) says it is a secret."""
    head, _, option = path.partition(".")
    if head == CONFIGURATION_OPTIONS and option:
        return option not in HARMLESS_OPTIONS
    return bool(SECRET_NAME.search(path.rsplit(".", 1)[-1]))


# ---------------------------------------------------------------------------- free text

# The name around the secret word is bounded: unbounded runs on both sides make a long unbroken word
# cost quadratic time (every start position scans to its end).
_KEY = (
    r"(?<![\w.-])[\w.-]{0,64}?(?:password|passwd|pwd|secret|token|api_?key|apikey|access_?key|private_?key"
    r"|credentials?|passphrase|fernet_?key|session_?key|signature|kwargs)[\w.-]{0,64}"
)


def _keyed(match: re.Match[str]) -> str:
    value = match.group("value")
    if value == REDACTED or value.strip("\"'") == REDACTED:
        return match.group(0)
    quote = value[0] if value[:1] in {'"', "'"} and len(value) > 1 and value[-1] == value[0] else ""
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # PEM private keys, whole.
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
        ),
        REDACTED,
    ),
    # A URI's credentials: postgresql://user:pass@host keeps the user and the host.
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/?#@'\"]*):([^\s@/'\"]+)@"), rf"\1\2:{REDACTED}@"),
    # A token as a URI's user: https://ghp_abc@github.com.
    (re.compile(r"(\b(?:https?|git|ssh)://)([^\s:/?#@'\"]{16,})@"), rf"\1{REDACTED}@"),
    # An Authorization header's credentials, whatever the scheme; a bearer token anywhere.
    (
        re.compile(r"""(\bAuthorization["']?\s*[:=]\s*["']?)((?:[A-Za-z]+\s+)?)[^\s"',;]+""", re.IGNORECASE),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"\b(Bearer\s+)(?!\*{4})[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), rf"\1{REDACTED}"),
    # key=value, key: value, "key": "value", key='value' with a secret-looking key.
    (
        re.compile(
            rf"""(?P<key>["']?{_KEY}["']?\s*[:=]\s*)(?P<value>\{{[^{{}}\n]*\}}|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,;&}}\])'"]+)""",
            re.IGNORECASE,
        ),
        _keyed,
    ),
    # JSON Web Tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # AWS access key ids.
    (re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b"), REDACTED),
    # AWS secret access keys: 40 characters of base64 with both cases and a digit (a hex digest, all
    # lower case, is left alone).
    (
        re.compile(
            r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}\d)"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
        REDACTED,
    ),
)


def redact_text(text: str) -> str:
    """Free text with secret-looking values replaced by REDACTED (best effort, idempotent)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
