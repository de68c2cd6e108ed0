"""Alpha Vantage daily time series: the HTTP client, its quotas, and landing what it fetches.

The vendor answers HTTP 200 for most failures and puts the reason in the body (``Error
Message``, ``Note``, ``Information``), so every answer is classified here into one of the
typed errors below: transient ones (rate limits, 429, 5xx, timeouts) are retried with
exponential backoff and jitter, honouring ``Retry-After``; terminal ones fail at once.

The API key travels only in the query string of the request itself. Every URL that reaches a
log line, an error or stored metadata goes through ``fdp.redaction``, which knows the key once
it is resolved, so vendor text that echoes it is masked too.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import httpx
import orjson
from pydantic import SecretStr

from fdp.aws_secrets import read_secret
from fdp.config import Settings
from fdp.errors import (
    ConfigError,
    DataError,
    TransientError,
)
from fdp.records import TICKER_RE
from fdp.redaction import install_log_redaction, redact, register_secret
from fdp.sources.errors import (
    DailyQuotaError,
    InvalidRequestError,
    PremiumEndpointError,
    RateLimitError,
    VendorResponseError,
    VendorUnavailableError,
)
from fdp.sources.ingest import IngestOutcome
from fdp.sources.landing import LandedObject, RawZone
from fdp.sources.vendor_json import META_KEY, TIME_SERIES_KEY, parse_daily
from fdp.storage import filesystem, put_bytes

SOURCE = "alpha_vantage"
Function = Literal["daily", "daily_adjusted"]
OutputSize = Literal["compact", "full"]
FUNCTIONS: dict[str, str] = {
    "daily": "TIME_SERIES_DAILY",
    "daily_adjusted": "TIME_SERIES_DAILY_ADJUSTED",
}
QUOTA_STATE = ("state", "alpha_vantage", "quota.json")
"""Where the call counts live under the data directory, so quotas survive restarts."""

_MAX_RETRY_AFTER_S = 900.0
_MAX_VENDOR_TEXT = 300

log = logging.getLogger(__name__)


def resolve_api_key(settings: Settings) -> SecretStr:
    """The API key: from AWS Secrets Manager when a secret name is set, else from settings."""
    if settings.alphavantage_secret_name:
        return _key_from_secrets_manager(settings, settings.alphavantage_secret_name)
    key = settings.alphavantage_api_key
    if key is None or not key.get_secret_value().strip():
        raise ConfigError(
            "no Alpha Vantage API key: set FDP_ALPHAVANTAGE_API_KEY, or"
            " FDP_ALPHAVANTAGE_SECRET_NAME to read it from AWS Secrets Manager"
        )
    register_secret(key.get_secret_value())
    return SecretStr(key.get_secret_value().strip())


def _key_from_secrets_manager(settings: Settings, name: str) -> SecretStr:
    """Read the key from a plain-text secret or a JSON one with an ``api_key`` field."""
    key = read_secret(settings, name)
    if key.startswith("{"):
        try:
            doc = json.loads(key)
        except ValueError:
            doc = {}
        key = str(doc.get("api_key") or doc.get("apikey") or "").strip()
    if not key:
        raise ConfigError(
            f'secret {name!r} holds no API key: store the key itself or JSON {{"api_key": ...}}'
        )
    register_secret(key)
    return SecretStr(key)


class RateLimiter:
    """Paces calls to ``calls_per_minute`` per window and ``calls_per_day`` per UTC day.

    The counts are kept in one small object under the data directory (local or ``s3://``)
    and re-read before every call, so a restarted process still honours both quotas.
    Waiting for the per-minute window sleeps; an exhausted day raises ``DailyQuotaError``.
    """

    def __init__(self, settings: Settings) -> None:
        self.per_minute = settings.alphavantage_calls_per_minute
        self.per_day = settings.alphavantage_calls_per_day
        self.window_s = settings.alphavantage_rate_window_s
        self.fs, self.path = filesystem(settings.path(*QUOTA_STATE), settings)
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until a call is allowed, then count it."""
        with self._lock:
            while True:
                now = time.time()
                day = dt.datetime.fromtimestamp(now, dt.UTC).date()
                state = self._load()
                calls = int(state["calls"]) if state.get("day") == day.isoformat() else 0
                if calls >= self.per_day:
                    tomorrow = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
                    raise DailyQuotaError(
                        f"Alpha Vantage daily quota of {self.per_day} calls used up for {day}"
                        " (FDP_ALPHAVANTAGE_CALLS_PER_DAY); retry after 00:00 UTC",
                        retry_after=tomorrow.timestamp() - now,
                    )
                recent = sorted(t for t in state.get("recent", []) if t > now - self.window_s)
                if len(recent) < self.per_minute:
                    self._save(
                        {"day": day.isoformat(), "calls": calls + 1, "recent": [*recent, now]}
                    )
                    return
                wait = recent[-self.per_minute] + self.window_s - now
                log.info("Alpha Vantage per-minute quota reached; waiting %.2fs", wait)
                time.sleep(max(wait, 0.0))

    def calls_today(self) -> int:
        state = self._load()
        today = dt.datetime.now(dt.UTC).date().isoformat()
        return int(state["calls"]) if state.get("day") == today else 0

    def _load(self) -> dict[str, Any]:
        if not self.fs.exists(self.path):
            return {}
        try:
            state = orjson.loads(self.fs.cat_file(self.path))
        except orjson.JSONDecodeError:
            raise DataError(
                f"{self.fs.unstrip_protocol(self.path)}: quota state is not JSON;"
                " delete it to reset the counts"
            ) from None
        return state if isinstance(state, dict) else {}

    def _save(self, state: dict[str, Any]) -> None:
        put_bytes(self.fs, self.path, orjson.dumps(state))


@dataclass(frozen=True, slots=True)
class Fetched:
    """One vendor answer that holds a time series: its bytes as received, and where from."""

    symbol: str
    payload: bytes
    url: str
    fetched_at: dt.datetime
    attempts: int


class AlphaVantageClient:
    """Fetches daily time series, one symbol per call, within the quotas."""

    def __init__(
        self,
        settings: Settings,
        *,
        api_key: SecretStr | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        _check_base_url(settings.alphavantage_base_url)
        # httpx logs every request URL, the key included: records are redacted as created.
        install_log_redaction()
        self._key = api_key if api_key is not None else resolve_api_key(settings)
        self.limiter = limiter if limiter is not None else RateLimiter(settings)
        self._http = httpx.Client(
            timeout=httpx.Timeout(settings.http_timeout_s),
            headers={"User-Agent": "fdp"},
        )
        self._random = random.Random()

    def __enter__(self) -> AlphaVantageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def fetch_daily(
        self, symbol: str, *, function: Function = "daily", outputsize: OutputSize = "compact"
    ) -> Fetched:
        """The vendor's answer for ``symbol``, after retrying transient failures."""
        if not TICKER_RE.match(symbol):
            raise ConfigError(f"invalid ticker {symbol!r}: expected {TICKER_RE.pattern}")
        if function not in FUNCTIONS:
            raise ConfigError(f"unknown function {function!r}; expected one of {list(FUNCTIONS)}")
        if outputsize not in ("compact", "full"):
            raise ConfigError(f"unknown outputsize {outputsize!r}; expected compact or full")
        params = {
            "function": FUNCTIONS[function],
            "symbol": symbol,
            "outputsize": outputsize,
            "datatype": "json",
            "apikey": self._key.get_secret_value(),
        }
        request = self._http.build_request(
            "GET", self.settings.alphavantage_base_url, params=params
        )
        shown = redact(str(request.url))
        retries = self.settings.http_max_retries
        for attempt in range(retries + 1):
            self.limiter.acquire()
            try:
                payload = self._send(request, symbol, shown)
                self._classify(payload, symbol, function, shown)
                return Fetched(symbol, payload, shown, dt.datetime.now(dt.UTC), attempt + 1)
            except TransientError as exc:
                wait = self._backoff(attempt, exc.retry_after)
                if isinstance(exc, DailyQuotaError) or attempt == retries or wait is None:
                    raise type(exc)(
                        f"{exc} (gave up after {attempt + 1} attempt(s))",
                        exc.retry_after,
                        symbol=symbol,
                    ) from None
                log.warning(
                    "%s: %s; retry %d of %d in %.2fs", symbol, exc, attempt + 1, retries, wait
                )
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, request: httpx.Request, symbol: str, shown: str) -> bytes:
        """The body of the answer; every HTTP failure becomes this symbol's typed error.

        A broken connection or exchange (network, a body cut short, a proxy) may work on a
        retry: transient. A body that cannot be decoded (a ``Content-Encoding`` it does not
        follow) or a request httpx cannot send as built will not: terminal.
        """
        try:
            response = self._http.send(request)
        except httpx.TimeoutException:
            raise VendorUnavailableError(
                f"{symbol}: no answer from {shown} within {self.settings.http_timeout_s}s",
                symbol=symbol,
            ) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            raise VendorUnavailableError(
                f"{symbol}: {type(exc).__name__} calling {shown}: {self._clean(exc)}",
                symbol=symbol,
            ) from None
        except httpx.DecodingError as exc:
            raise VendorResponseError(
                f"{symbol}: the answer from {shown} cannot be decoded: {self._clean(exc)}",
                symbol=symbol,
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise InvalidRequestError(
                f"{symbol}: {type(exc).__name__} calling {shown}: {self._clean(exc)}",
                symbol=symbol,
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            kind = RateLimitError if status == 429 else VendorUnavailableError
            raise kind(
                f"{symbol}: HTTP {status} from {shown}",
                _retry_after(response.headers.get("Retry-After")),
                symbol=symbol,
            )
        if status >= 400:
            raise InvalidRequestError(f"{symbol}: HTTP {status} from {shown}", symbol=symbol)
        if status >= 300:
            raise InvalidRequestError(
                f"{symbol}: HTTP {status} from {shown}: redirects are not followed",
                symbol=symbol,
                hint="set FDP_ALPHAVANTAGE_BASE_URL to the URL the vendor redirects to",
            )
        return response.content

    def _classify(self, payload: bytes, symbol: str, function: str, shown: str) -> None:
        """Raise the typed error an answer stands for; return when it holds a time series."""
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise VendorResponseError(
                f"{symbol}: malformed JSON from {shown} ({len(payload)} bytes): {exc}",
                symbol=symbol,
            ) from None
        if not isinstance(doc, dict):
            raise VendorResponseError(
                f"{symbol}: answer from {shown} is a JSON {type(doc).__name__}, not an object",
                symbol=symbol,
            )
        if TIME_SERIES_KEY in doc:
            meta = doc.get(META_KEY)
            echoed = meta.get("2. Symbol") if isinstance(meta, dict) else None
            if isinstance(echoed, str) and echoed.upper() != symbol.upper():
                raise VendorResponseError(
                    f"{symbol}: answer from {shown} is for {echoed!r}", symbol=symbol
                )
            return
        if "Error Message" in doc:
            raise InvalidRequestError(
                f"{symbol}: Alpha Vantage rejected {FUNCTIONS[function]} for {symbol}:"
                f" {self._clean(doc['Error Message'])} (check the symbol)",
                symbol=symbol,
            )
        notice = doc.get("Note") or doc.get("Information")
        if notice is not None:
            self._notice(str(notice), symbol, function)
        raise VendorResponseError(
            f"{symbol}: answer from {shown} has no {TIME_SERIES_KEY!r}"
            f" (top-level keys: {sorted(doc)[:5]})",
            symbol=symbol,
        )

    def _notice(self, notice: str, symbol: str, function: str) -> NoReturn:
        text, lower = self._clean(notice), notice.lower()
        throttled = any(
            p in lower
            for p in ("rate limit", "call frequency", "per minute", "per second", "per day")
        )
        if throttled and "per day" in lower and "per minute" not in lower:
            raise DailyQuotaError(
                f"{symbol}: Alpha Vantage daily limit reached: {text}", symbol=symbol
            )
        if throttled:
            raise RateLimitError(f"{symbol}: Alpha Vantage rate limit: {text}", symbol=symbol)
        if "premium" in lower:
            raise PremiumEndpointError(
                f"{symbol}: {FUNCTIONS[function]} is a premium Alpha Vantage endpoint for this"
                " key; use --function daily (TIME_SERIES_DAILY, free tier)",
                symbol=symbol,
            )
        raise VendorResponseError(
            f"{symbol}: no time series; Alpha Vantage says: {text}", symbol=symbol
        )

    def _clean(self, text: Any) -> str:
        """Vendor or library text made safe to show: the key masked, URLs redacted, short."""
        out = redact(str(text))
        return out if len(out) <= _MAX_VENDOR_TEXT else out[:_MAX_VENDOR_TEXT] + "..."

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds before the next attempt; ``None`` when the vendor asks for too long."""
        if retry_after is not None:
            return retry_after if retry_after <= _MAX_RETRY_AFTER_S else None
        ceiling = min(
            self.settings.http_backoff_max_s, self.settings.http_backoff_base_s * 2**attempt
        )
        return self._random.uniform(ceiling / 2, ceiling)


def _check_base_url(url: str) -> None:
    """A base URL httpx cannot call is a setting to fix, before any call."""
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL as exc:
        raise ConfigError(f"FDP_ALPHAVANTAGE_BASE_URL is not a URL: {exc}") from None
    if scheme not in ("http", "https"):
        raise ConfigError(f"FDP_ALPHAVANTAGE_BASE_URL must be an http(s) URL, not {url!r}")


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


def ingest(
    settings: Settings,
    symbols: Sequence[str],
    ingest_date: dt.date,
    *,
    function: Function = "daily",
    outputsize: OutputSize = "compact",
    on_outcome: Callable[[IngestOutcome], None] | None = None,
) -> list[IngestOutcome]:
    """Fetch each symbol and land it in the raw zone; one outcome per symbol, in order.

    A symbol's failure does not stop the others; the caller decides what failures mean.
    A missing key or a bad setting raises before any call.
    """
    zone = RawZone(settings)
    outcomes: list[IngestOutcome] = []
    with AlphaVantageClient(settings) as client:
        for symbol in symbols:
            try:
                landed = fetch_and_land(
                    client, zone, symbol, ingest_date, function=function, outputsize=outputsize
                )
                outcome = IngestOutcome(symbol, True, landed.rows, landed.path)
            except (DataError, InvalidRequestError, PremiumEndpointError, TransientError) as exc:
                log.error("%s: %s", symbol, exc)
                outcome = IngestOutcome(
                    symbol, False, error=str(exc), transient=isinstance(exc, TransientError)
                )
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    return outcomes


def fetch_and_land(
    client: AlphaVantageClient,
    zone: RawZone,
    symbol: str,
    ingest_date: dt.date,
    *,
    function: Function = "daily",
    outputsize: OutputSize = "compact",
) -> LandedObject:
    """Fetch one symbol, check that its bars parse, and land the bytes as received."""
    fetched = client.fetch_daily(symbol, function=function, outputsize=outputsize)
    bars = parse_daily(fetched.payload, source_file=fetched.url, ingest_date=ingest_date)
    landed = zone.land(
        SOURCE,
        ingest_date,
        symbol,
        fetched.payload,
        rows=len(bars),
        url=fetched.url,
        fetched_at=fetched.fetched_at,
    )
    log.info(
        "%s: landed %d bars at %s (%d attempt(s))",
        symbol,
        landed.rows,
        landed.path,
        fetched.attempts,
    )
    return landed
