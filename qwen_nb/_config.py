"""Providers and settings: where a request goes, with which model, and which key.

Precedence, highest first: an explicit argument (a magic option, a keyword of `ask()`),
the `QWEN_NB_*` environment variables, `%config QwenMagics.*` values, the provider
preset. The key is kept in a `Secret` whose repr never shows it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._errors import ConfigError
from ._redact import remember, watch_variables

DEFAULT_PROVIDER = "aimlapi"


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str
    model: str
    key_env: tuple[str, ...] = ()
    needs_key: bool = True
    # How the provider takes a thinking budget: "thinking_budget" (top level),
    # "reasoning.max_tokens" (OpenRouter), or None (not supported: not sent).
    thinking_budget_param: str | None = "thinking_budget"
    fetches_image_urls: bool = True  # False: http(s) images must be inlined as data URLs
    label: str = ""
    # How a video is sent by default (--video-as auto): "video_url" (an MP4 data URL, vLLM),
    # "frames" (DashScope's frame list) or "images" (timestamped images: any image server).
    video_encoding: str = "images"


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "aimlapi",
            "https://api.aimlapi.com/v1",
            "alibaba/qwen3-vl-32b-thinking",
            ("AIML_API_KEY", "AIMLAPI_API_KEY"),
            label="AIML API",
        ),
        Provider(
            "dashscope",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            "qwen3-vl-32b-thinking",
            ("DASHSCOPE_API_KEY",),
            label="DashScope (international)",
            video_encoding="frames",
        ),
        Provider(
            "dashscope-cn",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "qwen3-vl-32b-thinking",
            ("DASHSCOPE_API_KEY",),
            label="DashScope (mainland)",
            video_encoding="frames",
        ),
        Provider(
            "openrouter",
            "https://openrouter.ai/api/v1",
            "qwen/qwen3-vl-32b-thinking",
            ("OPENROUTER_API_KEY",),
            thinking_budget_param="reasoning.max_tokens",
            label="OpenRouter",
        ),
        Provider(
            "vllm",
            "http://127.0.0.1:8000/v1",
            "Qwen/Qwen3-VL-32B-Thinking",
            needs_key=False,
            thinking_budget_param=None,
            label="vLLM (local)",
            video_encoding="video_url",
        ),
        Provider(
            "ollama",
            "http://127.0.0.1:11434/v1",
            "qwen3-vl:32b",
            needs_key=False,
            thinking_budget_param=None,
            fetches_image_urls=False,
            label="Ollama (local)",
        ),
        Provider(
            "lmstudio",
            "http://127.0.0.1:1234/v1",
            "qwen3-vl-32b-thinking",
            needs_key=False,
            thinking_budget_param=None,
            fetches_image_urls=False,
            label="LM Studio (local)",
        ),
        Provider(
            "llamacpp",
            "http://127.0.0.1:8080/v1",
            "qwen3-vl-32b-thinking",
            needs_key=False,
            thinking_budget_param=None,
            fetches_image_urls=False,
            label="llama.cpp server (local)",
        ),
        Provider(
            "local",
            "http://127.0.0.1:8000/v1",
            "Qwen/Qwen3-VL-32B-Thinking",
            needs_key=False,
            thinking_budget_param=None,
            label="any OpenAI-compatible server",
        ),
        Provider(
            "offline",
            "offline://simulator",
            "qwen3-vl-32b-thinking (offline simulator)",
            needs_key=False,
            thinking_budget_param="thinking_budget",
            label="offline simulator (no model, no network)",
        ),
    )
}

watch_variables(name for provider in PROVIDERS.values() for name in provider.key_env)

# Keys entered with set_api_key(): in this process's memory only, never on disk.
_session_keys: dict[str, str] = {}


class Secret:
    """An API key that cannot leak through repr, str, f-strings or pickling."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)  # so a server that repeats it gets it redacted

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not picklable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one call."""

    provider: Provider
    base_url: str
    model: str
    api_key: Secret | None = field(default=None, repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 120.0  # silence allowed between chunks
    max_attempts: int = 4
    max_retry_time: float = 60.0
    # Images travel base64-encoded inside the JSON body; providers refuse bodies much
    # larger than this, so a bigger request is refused here, naming the images to shrink.
    max_payload_bytes: int = 20_000_000
    # Bounds against a broken or hostile server (each failure keeps the partial reply).
    max_time: float = 1800.0  # the whole call, retries included
    max_reply_chars: int = 8_000_000  # answer + thinking
    max_line_chars: int = 16_000_000  # one SSE line
    max_body_bytes: int = 32_000_000  # a non-streamed JSON body, after decompression

    @property
    def is_offline(self) -> bool:
        return self.provider.name == "offline"

    def require_key(self) -> Secret | None:
        """The key, or a ConfigError that says how to provide one."""
        if self.api_key is None and self.provider.needs_key:
            names = " or ".join(self.provider.key_env + ("QWEN_NB_API_KEY",))
            raise ConfigError(
                f"No API key for {self.provider.label or self.provider.name}. "
                f"Set the {names} environment variable before starting Jupyter, or run "
                "qwen_nb.set_api_key() to type it in without it appearing in the notebook. "
                "To try qwen_nb without a key, use --provider offline (a simulator, "
                "not a model)."
            )
        return self.api_key


def validate_base_url(url: str) -> str:
    """The base URL without a trailing slash, or a ConfigError that says what to fix.

    Error messages never repeat credentials or a query string: either may hold a key."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            "The base URL is empty. Use the form https://host/v1 (the part "
            "before /chat/completions)."
        )
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        raise ConfigError(f"The base URL {redact_url(url)!r} cannot be parsed. Use the form "
                          "https://host/v1.") from None
    if "@" in re.split(r"[?#]", url, maxsplit=1)[0] or parts.username or parts.password:
        raise ConfigError(
            "The base URL carries credentials (user:password@); they were not used. Give "
            "the key with QWEN_NB_API_KEY or qwen_nb.set_api_key() instead, and the base URL "
            "as https://host/v1."
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"The base URL {redact_url(url)!r} has a query string or fragment; they were not "
            "used. Give the key with QWEN_NB_API_KEY or qwen_nb.set_api_key(), and the base "
            "URL as https://host/v1."
        )
    shown = redact_url(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"The base URL {shown!r} is not an http(s) URL. Use the form https://host/v1 "
            "(the part before /chat/completions)."
        )
    if any(ch.isspace() for ch in url):
        raise ConfigError(f"The base URL {shown!r} contains spaces; remove them.")
    try:
        # A host the resolver cannot encode ("a..b", a label over 63 characters) would
        # otherwise fail at connect time with a bare UnicodeError, not a QwenError.
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ConfigError(
            f"The base URL {shown!r} has an invalid host name (an empty or overlong part "
            "between dots?). Use the form https://host/v1."
        ) from None
    try:
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
    except ValueError:
        raise ConfigError(
            f"The base URL {shown!r} has an invalid port; use a number from 1 to 65535."
        ) from None
    if parts.path.rstrip("/").endswith("/chat/completions"):
        raise ConfigError(
            f"The base URL {shown!r} ends with /chat/completions; leave that part off "
            "(qwen_nb adds it), e.g. https://host/v1."
        )
    return url.rstrip("/")


def redact_url(url: str) -> str:
    """`url` safe to show: no user:password@ part, no query string or fragment."""
    head = re.split(r"[?#]", url, maxsplit=1)[0]
    if "@" in head:
        scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", head)
        head = (scheme.group(0) if scheme else "") + "***@" + head.rsplit("@", 1)[1]
    return head + ("?***" if head != url else "")


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name.strip().lower()]
    except KeyError:
        known = ", ".join(PROVIDERS)
        raise ConfigError(f"Unknown provider {name!r}. Choose one of: {known}.") from None


def _pick(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return value
    return None


def _env_float(name: str, env: Mapping[str, str]) -> float | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number.") from None


def _checked_key(key: Any) -> Secret | None:
    """The key as a Secret; refuses one that cannot go in a header, without showing it."""
    if key is None:
        return None
    if isinstance(key, Secret):
        key = key.reveal()
    key = str(key).strip()
    if not key:
        return None
    if not key.isascii() or not key.isprintable() or " " in key:
        raise ConfigError(
            "The API key contains spaces, line breaks or non-ASCII characters "
            "(a copy-paste slip?). Set it again with qwen_nb.set_api_key()."
        )
    return Secret(key)


def _seconds(label: str, value: Any, *, allow_zero: bool = False) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not (seconds >= 0 if allow_zero else seconds > 0) or seconds == float("inf"):
        raise ConfigError(
            f"The {label} must be a {'non-negative' if allow_zero else 'positive'}"
            f" number of seconds, not {value!r}."
        )
    return seconds


def resolve_settings(
    *,
    provider: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    max_attempts: int | None = None,
    max_retry_time: float | None = None,
    max_payload_mb: float | None = None,
    max_time: float | None = None,
    max_reply_mb: float | None = None,
    max_line_mb: float | None = None,
    max_body_mb: float | None = None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from explicit arguments, then QWEN_NB_* variables, then `config`, then
    the provider preset."""
    env = os.environ if env is None else env
    config = config or {}
    preset = get_provider(
        _pick(provider, env.get("QWEN_NB_PROVIDER"), config.get("provider"), DEFAULT_PROVIDER)
    )
    url = _pick(base_url, env.get("QWEN_NB_BASE_URL"), config.get("base_url"), preset.base_url)
    if not preset.name == "offline":
        url = validate_base_url(url)
    # A key typed into set_api_key() this session is more deliberate than the environment.
    key = _pick(
        api_key,
        _session_keys.get(preset.name),
        # A key set without naming a provider is for the hosted providers: a local server
        # that needs no key (vLLM, Ollama...) must not receive someone's paid key.
        _session_keys.get("*") if preset.needs_key else None,
        env.get("QWEN_NB_API_KEY"),
        *(env.get(name) for name in preset.key_env),
    )
    read_timeout = _pick(timeout, _env_float("QWEN_NB_TIMEOUT", env), config.get("timeout"), 120.0)
    connect = _pick(
        connect_timeout,
        _env_float("QWEN_NB_CONNECT_TIMEOUT", env),
        config.get("connect_timeout"),
        10.0,
    )
    attempts = _pick(max_attempts, env.get("QWEN_NB_MAX_ATTEMPTS"), config.get("max_attempts"), 4)
    retry_time = _pick(
        max_retry_time,
        _env_float("QWEN_NB_MAX_RETRY_TIME", env),
        config.get("max_retry_time"),
        60.0,
    )
    read_timeout = _seconds("timeout", read_timeout)
    connect = _seconds("connect timeout", connect)
    try:
        attempts = int(attempts)
    except (TypeError, ValueError):
        raise ConfigError(f"max_attempts must be a whole number, not {attempts!r}.") from None
    if attempts < 1:
        raise ConfigError(f"max_attempts must be at least 1, not {attempts}.")
    retry_time = _seconds("max_retry_time", retry_time, allow_zero=True)
    total_time = _seconds("max_time", _pick(max_time, _env_float("QWEN_NB_MAX_TIME", env),
                                            config.get("max_time"), 1800.0))
    return Settings(
        provider=preset,
        base_url=url,
        model=_pick(model, env.get("QWEN_NB_MODEL"), config.get("model"), preset.model),
        api_key=_checked_key(key),
        connect_timeout=float(connect),
        read_timeout=float(read_timeout),
        max_attempts=attempts,
        max_retry_time=float(retry_time),
        max_payload_bytes=_megabytes("max_payload_mb", max_payload_mb, env, config, 20.0),
        max_time=total_time,
        max_reply_chars=_megabytes("max_reply_mb", max_reply_mb, env, config, 8.0),
        max_line_chars=_megabytes("max_line_mb", max_line_mb, env, config, 16.0),
        max_body_bytes=_megabytes("max_body_mb", max_body_mb, env, config, 32.0),
    )


def _megabytes(name: str, explicit: float | None, env: Mapping[str, str],
               config: Mapping[str, Any], default: float) -> int:
    """A size cap in bytes from `name` (explicit, QWEN_NB_<NAME>, %config, default)."""
    megabytes = _pick(explicit, _env_float(f"QWEN_NB_{name.upper()}", env),
                      config.get(name), default)
    try:
        megabytes = float(megabytes)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of megabytes, not {megabytes!r}."
                          ) from None
    if not math.isfinite(megabytes) or megabytes <= 0:
        raise ConfigError(f"{name} must be a positive number of megabytes, "
                          f"not {megabytes}.")
    return int(megabytes * 1_000_000)


def set_api_key(key: str | None = None, *, provider: str | None = None) -> None:
    """Keep an API key in memory for this session; asks with getpass when none is given,
    so the key never has to appear in a cell or its output."""
    if key is None:
        import getpass

        label = provider or "the default provider"
        key = getpass.getpass(f"API key for {label} (kept in memory only): ")
    key = key.strip()
    if not key:
        raise ConfigError("No key was entered; nothing changed.")
    _session_keys[get_provider(provider).name if provider else "*"] = key
    remember(key)  # redacted from anything a server sends back, from now on
