"""The Alpha Vantage client against a real HTTP server on loopback that answers like the vendor.

The server runs in a thread and records every request (time, query); each symbol follows a
script of answers (status, body, headers, delay), so retries, pacing and failures are
observed from the server's side rather than inferred from the client's code.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fdp.cli import main
from fdp.config import Settings
from fdp.errors import ConfigError, DataError, TerminalError, TransientError
from fdp.sources.alpha_vantage import (
    AlphaVantageClient,
    DailyQuotaError,
    InvalidRequestError,
    PremiumEndpointError,
    RateLimitError,
    VendorResponseError,
    VendorUnavailableError,
    ingest,
    resolve_api_key,
)
from fdp.sources.landing import RawZone
from vendor_server import Answer, VendorServer, vendor_doc

KEY = "SeCrEtKeY9876"
DAY = dt.date(2026, 11, 20)
OTHER_DAY = dt.date(2026, 11, 19)


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=4).encode()


@pytest.fixture
def vendor() -> Iterator[VendorServer]:
    server = VendorServer()
    yield server
    server.close()


def av_settings(tmp_path: Path, vendor: VendorServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "alphavantage_api_key": KEY,
        "alphavantage_base_url": vendor.url,
        "alphavantage_calls_per_minute": 1000,
        "alphavantage_calls_per_day": 1000,
        "http_timeout_s": 2.0,
        "http_max_retries": 2,
        "http_backoff_base_s": 0.01,
        "http_backoff_max_s": 0.02,
    }
    return Settings(**(values | overrides))


def zone_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- normal answers -------------------------------------------------------------------------


def test_compact_daily_lands_the_vendor_bytes_exactly(tmp_path: Path, vendor: VendorServer) -> None:
    settings = av_settings(tmp_path, vendor)
    outcomes = ingest(settings, ["AAPL"], DAY)

    assert [(o.symbol, o.ok, o.rows) for o in outcomes] == [("AAPL", True, 100)]
    (call,) = vendor.calls
    assert call.query == {
        "function": "TIME_SERIES_DAILY",
        "symbol": "AAPL",
        "outputsize": "compact",
        "datatype": "json",
        "apikey": KEY,
    }
    zone = RawZone(settings)
    path = Path(zone.object_path("alpha_vantage", DAY, "AAPL"))
    assert path.read_bytes() == vendor_doc("AAPL", 100)
    meta = zone.metadata("alpha_vantage", DAY, "AAPL")
    assert meta["rows"] == 100
    assert meta["size"] == len(vendor_doc("AAPL", 100))
    assert "apikey=***" in meta["url"]
    assert dt.datetime.fromisoformat(meta["fetched_at"]).utcoffset() == dt.timedelta(0)
    import hashlib

    assert meta["sha256"] == hashlib.sha256(vendor_doc("AAPL", 100)).hexdigest()

    bars = zone.read_batch("alpha_vantage", DAY).df.sort("timestamp")
    assert bars.height == 100
    newest = bars.row(-1, named=True)
    assert newest["timestamp"] == "2026-11-20"
    assert (newest["open"], newest["high"], newest["low"], newest["close"]) == (
        100.0,
        102.0,
        99.0,
        101.0,
    )
    assert newest["volume"] == 1000
    assert newest["adjusted_close"] is None
    assert newest["split_coefficient"] is None


def test_full_adjusted_answer_is_requested_and_parsed(tmp_path: Path, vendor: VendorServer) -> None:
    settings = av_settings(tmp_path, vendor)
    outcomes = ingest(settings, ["MSFT"], DAY, function="daily_adjusted", outputsize="full")

    assert [(o.ok, o.rows) for o in outcomes] == [(True, 300)]
    assert vendor.calls[0].query["function"] == "TIME_SERIES_DAILY_ADJUSTED"
    assert vendor.calls[0].query["outputsize"] == "full"
    bars = RawZone(settings).read_batch("alpha_vantage", DAY).df.sort("timestamp")
    assert bars.height == 300
    fourth_newest = bars.row(-4, named=True)
    assert fourth_newest["split_coefficient"] == 2.0
    assert fourth_newest["adjusted_close"] == pytest.approx((103.0 + 1) / 2, abs=1e-4)
    assert fourth_newest["volume"] == 1003


# --- vendor error bodies --------------------------------------------------------------------

INVALID = {
    "Error Message": "Invalid API call. Please retry or visit the documentation"
    " (https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
}
PREMIUM = {
    "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may"
    " subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to"
    " instantly unlock all premium endpoints"
}
PER_MINUTE = {
    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per"
    " minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you"
    " would like to target a higher API call frequency."
}
PER_DAY = {
    "Information": f"We have detected your API key as {KEY} and our standard API rate limit is"
    " 25 requests per day. Please subscribe to any of the premium plans at"
    " https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."
}
NO_SERIES = {"Meta Data": {"1. Information": "Daily Prices", "2. Symbol": "XYZ"}}


@pytest.mark.parametrize(
    ("answer", "error", "calls", "says"),
    [
        pytest.param(body(INVALID), InvalidRequestError, 1, "check the symbol", id="error-message"),
        pytest.param(body(PREMIUM), PremiumEndpointError, 1, "--function daily", id="premium"),
        pytest.param(body(PER_MINUTE), RateLimitError, 3, "rate limit", id="note-per-minute"),
        pytest.param(body(PER_DAY), DailyQuotaError, 1, "daily limit", id="information-per-day"),
        pytest.param(
            vendor_doc("XYZ", 5)[:150], VendorResponseError, 1, "malformed JSON", id="truncated"
        ),
        pytest.param(
            body(NO_SERIES), VendorResponseError, 1, "'Time Series (Daily)'", id="no-series"
        ),
        pytest.param(b"[1, 2]", VendorResponseError, 1, "not an object", id="json-array"),
    ],
)
def test_vendor_error_bodies_become_typed_errors(
    tmp_path: Path,
    vendor: VendorServer,
    answer: bytes,
    error: type[Exception],
    calls: int,
    says: str,
) -> None:
    settings = av_settings(tmp_path, vendor)
    vendor.scripts["XYZ"] = [Answer(body=answer)]
    with AlphaVantageClient(settings) as client, pytest.raises(error) as caught:
        client.fetch_daily("XYZ")

    assert "XYZ" in str(caught.value)
    assert says in str(caught.value)
    assert len(vendor.calls_for("XYZ")) == calls
    transient = (RateLimitError, DailyQuotaError)
    assert isinstance(caught.value, TransientError if error in transient else TerminalError)

    outcomes = ingest(settings, ["XYZ", "AAPL"], DAY)
    assert [(o.symbol, o.ok) for o in outcomes] == [("XYZ", False), ("AAPL", True)]
    assert says in (outcomes[0].error or "")
    zone = RawZone(settings)
    assert [Path(p).name for p in zone.json_objects("alpha_vantage", DAY)] == ["symbol=AAPL.json"]


def test_bad_bar_is_rejected_naming_symbol_date_and_field(
    tmp_path: Path, vendor: VendorServer
) -> None:
    doc = json.loads(vendor_doc("IBM", 3))
    doc["Time Series (Daily)"]["2026-11-19"]["2. high"] = "n/a"
    vendor.scripts["IBM"] = [Answer(body=body(doc))]
    settings = av_settings(tmp_path, vendor)

    (outcome,) = ingest(settings, ["IBM"], DAY)

    assert not outcome.ok
    assert "IBM 2026-11-19: field 'high' is not a number: 'n/a'" in (outcome.error or "")
    assert RawZone(settings).json_objects("alpha_vantage", DAY) == []


# --- HTTP-level faults and retries ----------------------------------------------------------


def test_429_waits_for_retry_after_then_lands(tmp_path: Path, vendor: VendorServer) -> None:
    vendor.scripts["AAPL"] = [Answer(429, b"{}", {"Retry-After": "1"}), Answer()]
    settings = av_settings(tmp_path, vendor)

    (outcome,) = ingest(settings, ["AAPL"], DAY)

    calls = vendor.calls_for("AAPL")
    assert outcome.ok
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 0.95  # Retry-After, not the 0.02 s backoff cap
    path = Path(RawZone(settings).object_path("alpha_vantage", DAY, "AAPL"))
    assert path.read_bytes() == vendor_doc("AAPL", 100)


def test_500_then_success_is_retried(tmp_path: Path, vendor: VendorServer) -> None:
    vendor.scripts["AAPL"] = [Answer(500, b"oops"), Answer(503, b"busy"), Answer()]
    settings = av_settings(tmp_path, vendor)

    (outcome,) = ingest(settings, ["AAPL"], DAY)

    assert outcome.ok
    assert len(vendor.calls_for("AAPL")) == 3
    assert RawZone(settings).metadata("alpha_vantage", DAY, "AAPL")["rows"] == 100


def test_persistent_500_gives_up_as_transient(tmp_path: Path, vendor: VendorServer) -> None:
    vendor.scripts["AAPL"] = [Answer(502, b"bad gateway")]
    settings = av_settings(tmp_path, vendor)

    with AlphaVantageClient(settings) as client, pytest.raises(VendorUnavailableError) as caught:
        client.fetch_daily("AAPL")

    assert "HTTP 502" in str(caught.value)
    assert "gave up after 3 attempt(s)" in str(caught.value)
    assert len(vendor.calls_for("AAPL")) == 3


def test_other_4xx_is_terminal_and_not_retried(tmp_path: Path, vendor: VendorServer) -> None:
    vendor.scripts["AAPL"] = [Answer(403, b"forbidden")]
    with (
        AlphaVantageClient(av_settings(tmp_path, vendor)) as client,
        pytest.raises(InvalidRequestError, match="AAPL: HTTP 403"),
    ):
        client.fetch_daily("AAPL")
    assert len(vendor.calls_for("AAPL")) == 1


def test_slow_answer_times_out_and_is_retried(tmp_path: Path, vendor: VendorServer) -> None:
    vendor.scripts["AAPL"] = [Answer(delay=1.5), Answer()]
    vendor.scripts["SLOW"] = [Answer(delay=1.5)]
    settings = av_settings(tmp_path, vendor, http_timeout_s=0.3, http_max_retries=1)

    outcomes = ingest(settings, ["AAPL", "SLOW"], DAY)

    assert [(o.symbol, o.ok, o.transient) for o in outcomes] == [
        ("AAPL", True, False),
        ("SLOW", False, True),
    ]
    assert "no answer" in (outcomes[1].error or "")
    assert len(vendor.calls_for("AAPL")) == 2
    assert len(vendor.calls_for("SLOW")) == 2
    names = [Path(p).name for p in RawZone(settings).json_objects("alpha_vantage", DAY)]
    assert names == ["symbol=AAPL.json"]


def test_unreachable_vendor_is_transient(tmp_path: Path, vendor: VendorServer) -> None:
    settings = av_settings(tmp_path, vendor, alphavantage_base_url="http://127.0.0.1:9/query")
    with AlphaVantageClient(settings) as client, pytest.raises(VendorUnavailableError):
        client.fetch_daily("AAPL")


# --- bodies that break HTTP itself -----------------------------------------------------------


def test_undecodable_and_truncated_bodies_fail_their_symbol_only(
    tmp_path: Path, vendor: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage announced as gzip, and a body cut short (the server closes early), fail their
    own symbols as typed errors; the symbol after them still lands."""
    full = vendor_doc("CUT", 100)
    vendor.scripts["GZIP"] = [
        Answer(body=b"\x1f\x8bnot gzip", headers={"Content-Encoding": "gzip"})
    ]
    vendor.scripts["CUT"] = [Answer(body=full[:500], declared_length=len(full))]
    settings = av_settings(tmp_path, vendor)

    outcomes = ingest(settings, ["GZIP", "CUT", "AAPL"], DAY)

    assert [(o.symbol, o.ok) for o in outcomes] == [("GZIP", False), ("CUT", False), ("AAPL", True)]
    gzip, cut = outcomes[0], outcomes[1]
    # Undecodable bytes will not decode on a retry: terminal, one call.
    assert not gzip.transient
    assert (gzip.error or "").startswith("GZIP: the answer from http://127.0.0.1:")
    assert "cannot be decoded" in (gzip.error or "")
    assert len(vendor.calls_for("GZIP")) == 1
    # A connection that broke mid-body may not break again: transient, retried, then failed.
    assert cut.transient
    assert "CUT: RemoteProtocolError calling" in (cut.error or "")
    assert len(vendor.calls_for("CUT")) == settings.http_max_retries + 1
    assert "Traceback" not in caplog.text
    assert KEY not in f"{outcomes}"
    zone = RawZone(settings)
    assert [Path(p).name for p in zone.json_objects("alpha_vantage", DAY)] == ["symbol=AAPL.json"]


def test_the_client_names_the_symbol_on_every_http_failure(
    tmp_path: Path, vendor: VendorServer
) -> None:
    vendor.scripts["GZIP"] = [Answer(body=b"garbage", headers={"Content-Encoding": "gzip"})]
    vendor.scripts["MOVED"] = [Answer(301, b"", {"Location": "https://elsewhere.example/q"})]
    with AlphaVantageClient(av_settings(tmp_path, vendor)) as client:
        with pytest.raises(VendorResponseError) as undecodable:
            client.fetch_daily("GZIP")
        with pytest.raises(InvalidRequestError) as moved:
            client.fetch_daily("MOVED")
    assert undecodable.value.symbol == "GZIP"
    assert isinstance(undecodable.value, DataError)  # exit 2, like any bad vendor data
    assert moved.value.symbol == "MOVED"
    assert "HTTP 301" in str(moved.value)
    assert moved.value.hint is not None
    assert "FDP_ALPHAVANTAGE_BASE_URL" in moved.value.hint


def test_cli_ingest_survives_bad_bodies_without_a_traceback(
    tmp_path: Path, vendor: VendorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FDP_ALPHAVANTAGE_API_KEY", KEY)
    monkeypatch.setenv("FDP_ALPHAVANTAGE_BASE_URL", vendor.url)
    monkeypatch.setenv("FDP_HTTP_BACKOFF_MAX_S", "0.01")
    monkeypatch.setenv("FDP_ALPHAVANTAGE_CALLS_PER_MINUTE", "1000")  # no pacing to wait for
    full = vendor_doc("CUT", 100)
    vendor.scripts["GZIP"] = [Answer(body=b"garbage", headers={"Content-Encoding": "gzip"})]
    vendor.scripts["CUT"] = [Answer(body=full[:100], declared_length=len(full))]

    result = CliRunner().invoke(main, ["ingest", "--symbols", "GZIP,CUT,AAPL", "--date", str(DAY)])

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "2 symbol(s) failed: GZIP" in result.stderr
    assert "CUT" in result.stderr
    objects = RawZone(Settings()).json_objects("alpha_vantage", DAY)
    assert [Path(p).name for p in objects] == ["symbol=AAPL.json"]


@pytest.mark.parametrize("url", ["ftp://vendor.example/query", "http://[::1", "not a url"])
def test_a_base_url_httpx_cannot_call_is_a_config_error(
    tmp_path: Path, vendor: VendorServer, url: str
) -> None:
    """Before any call: every symbol would fail the same way."""
    with pytest.raises(ConfigError, match="FDP_ALPHAVANTAGE_BASE_URL"):
        ingest(av_settings(tmp_path, vendor, alphavantage_base_url=url), ["AAPL"], DAY)
    assert vendor.calls == []


# --- secrets --------------------------------------------------------------------------------


def test_key_never_in_logs_errors_or_stored_files(
    tmp_path: Path,
    vendor: VendorServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    # other libraries in the same test process (Airflow's logging config) may have silenced it
    caplog.set_level(logging.INFO, logger="httpx")
    monkeypatch.setattr(logging.getLogger("httpx"), "disabled", False)
    vendor.scripts["DAY"] = [Answer(body=body(PER_DAY))]
    vendor.scripts["MIN"] = [Answer(body=body(PER_MINUTE))]
    vendor.scripts["BAD"] = [Answer(body=body(INVALID))]
    vendor.scripts["ERR"] = [Answer(500, KEY.encode())]
    vendor.scripts["TRUNC"] = [Answer(body=b'{"Meta Data": {"2. Symbol": "' + KEY.encode())]
    settings = av_settings(tmp_path, vendor)

    outcomes = ingest(settings, ["AAPL", "DAY", "MIN", "BAD", "ERR", "TRUNC"], DAY)
    errors: list[str] = []
    for symbol in ("DAY", "BAD", "TRUNC"):
        with AlphaVantageClient(settings) as client, pytest.raises(Exception) as caught:  # noqa: PT011
            client.fetch_daily(symbol)
        errors.append(f"{caught.value!s} {caught.value!r}")

    assert all(c.query["apikey"] == KEY for c in vendor.calls)  # it was really sent
    assert [o.ok for o in outcomes] == [True, False, False, False, False, False]
    assert "HTTP Request" in caplog.text  # httpx logged each request ...
    assert "apikey=***" in caplog.text  # ... with the key masked
    assert KEY not in caplog.text
    assert not [e for e in errors if KEY in e]
    assert not [o for o in outcomes if KEY in repr(o)]
    stored = zone_files(tmp_path / "data")
    assert stored  # the landed object, its metadata and the quota state
    assert not [name for name, data in stored.items() if KEY.encode() in data]


def test_missing_key_is_a_config_error(tmp_path: Path, vendor: VendorServer) -> None:
    settings = av_settings(tmp_path, vendor, alphavantage_api_key=None)
    with pytest.raises(ConfigError, match="FDP_ALPHAVANTAGE_API_KEY"):
        ingest(settings, ["AAPL"], DAY)
    assert vendor.calls == []


def test_settings_repr_hides_key(tmp_path: Path, vendor: VendorServer) -> None:
    settings = av_settings(tmp_path, vendor)
    assert KEY not in repr(settings)
    assert KEY not in str(settings.model_dump())


# --- idempotency ----------------------------------------------------------------------------


def test_reingest_is_idempotent_and_leaves_other_dates_untouched(
    tmp_path: Path, vendor: VendorServer
) -> None:
    settings = av_settings(tmp_path, vendor)
    root = tmp_path / "data" / "raw"
    ingest(settings, ["AAPL", "MSFT"], OTHER_DAY)
    ingest(settings, ["AAPL", "MSFT"], DAY)
    first = zone_files(root)

    ingest(settings, ["AAPL", "MSFT"], DAY)
    assert zone_files(root) == first  # same answers: every object and its metadata identical

    vendor.scripts["AAPL"] = [Answer(body=vendor_doc("AAPL", 100, bump=0.5))]
    ingest(settings, ["AAPL"], DAY)
    after = zone_files(root)
    changed = {name for name in after if after[name] != first.get(name)}
    day = f"source=alpha_vantage/ingest_date={DAY}"
    assert changed == {f"{day}/symbol=AAPL.json", f"{day}/symbol=AAPL.meta.json"}
    assert after[f"{day}/symbol=AAPL.json"] == vendor_doc("AAPL", 100, bump=0.5)
    assert set(after) == set(first)  # nothing added, nothing deleted, no temp files left


# --- quotas ---------------------------------------------------------------------------------


def test_limiter_paces_calls_within_the_window(tmp_path: Path, vendor: VendorServer) -> None:
    settings = av_settings(
        tmp_path, vendor, alphavantage_calls_per_minute=3, alphavantage_rate_window_s=1.0
    )
    outcomes = ingest(settings, ["A", "B", "C", "D", "E"], DAY)

    assert all(o.ok for o in outcomes)
    at = [c.at for c in vendor.calls]
    assert len(at) == 5
    assert at[3] - at[0] >= 0.95  # the 4th call waited for the 1st to leave the window
    assert at[4] - at[1] >= 0.95


def test_daily_quota_survives_a_restart(tmp_path: Path, vendor: VendorServer) -> None:
    settings = av_settings(tmp_path, vendor, alphavantage_calls_per_day=2)

    first = ingest(settings, ["A", "B", "C"], DAY)
    again = ingest(settings, ["C"], DAY)  # a new client and limiter: a restarted process

    assert [(o.ok, o.transient) for o in first] == [(True, False), (True, False), (False, True)]
    assert "daily quota of 2 calls" in (first[2].error or "")
    assert [(o.ok, o.transient) for o in again] == [(False, True)]
    assert len(vendor.calls) == 2


# --- command line ---------------------------------------------------------------------------


def test_cli_ingest_reports_each_symbol_and_fails_on_any_failure(
    tmp_path: Path, vendor: VendorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FDP_ALPHAVANTAGE_API_KEY", KEY)
    monkeypatch.setenv("FDP_ALPHAVANTAGE_BASE_URL", vendor.url)
    monkeypatch.setenv("FDP_HTTP_BACKOFF_MAX_S", "0.01")
    vendor.scripts["NOPE"] = [Answer(body=body(INVALID))]
    runner = CliRunner()

    ok = runner.invoke(main, ["ingest", "--symbols", "aapl,msft", "--date", str(DAY)])
    bad = runner.invoke(main, ["ingest", "--symbols", "AAPL,NOPE", "--date", str(DAY)])

    assert ok.exit_code == 0, ok.output
    assert "AAPL" in ok.stdout
    assert "MSFT" in ok.stdout
    assert bad.exit_code == 1, bad.output
    assert "1 symbol(s) failed: NOPE: Alpha Vantage rejected" in bad.stderr
    assert "NOPE" in bad.stdout
    assert KEY not in ok.output + bad.output
    objects = RawZone(Settings()).json_objects("alpha_vantage", DAY)
    assert [Path(p).name for p in objects] == ["symbol=AAPL.json", "symbol=MSFT.json"]


def test_cli_ingest_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    no_key = runner.invoke(main, ["ingest", "--symbols", "AAPL", "--date", str(DAY)])
    bad_ticker = runner.invoke(main, ["ingest", "--symbols", "AAPL,b@d", "--date", str(DAY)])

    assert no_key.exit_code == 2
    assert "FDP_ALPHAVANTAGE_API_KEY" in no_key.stderr
    assert bad_ticker.exit_code == 2
    assert "b@d" in bad_ticker.stderr


# --- AWS: Secrets Manager and s3:// through moto's server mode (a LOCAL STAND-IN for AWS) ---


def test_key_from_secrets_manager_moto_local_standin(
    tmp_path: Path, vendor: VendorServer, aws_env: str
) -> None:
    import boto3

    secrets = boto3.client("secretsmanager", endpoint_url=aws_env, region_name="us-east-1")
    secrets.create_secret(Name="fdp/av-plain", SecretString=f" {KEY}\n")
    secrets.create_secret(Name="fdp/av-json", SecretString=json.dumps({"api_key": "JsOnKeY"}))
    secrets.create_secret(Name="fdp/av-empty", SecretString=json.dumps({"other": 1}))

    def with_secret(name: str) -> Settings:
        return av_settings(
            tmp_path,
            vendor,
            alphavantage_api_key=None,
            alphavantage_secret_name=name,
            secrets_endpoint_url=aws_env,
            aws_region="us-east-1",
        )

    assert resolve_api_key(with_secret("fdp/av-json")).get_secret_value() == "JsOnKeY"
    with pytest.raises(ConfigError, match="ResourceNotFoundException"):
        resolve_api_key(with_secret("fdp/missing"))
    with pytest.raises(ConfigError, match="holds no API key"):
        resolve_api_key(with_secret("fdp/av-empty"))

    (outcome,) = ingest(with_secret("fdp/av-plain"), ["AAPL"], DAY)
    assert outcome.ok
    assert vendor.calls[-1].query["apikey"] == KEY


def test_cli_ingest_to_s3_moto_local_standin(
    vendor: VendorServer, aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    s3.create_bucket(Bucket="fdp-ingest")
    for name, value in {
        "FDP_DATA_DIR": "s3://fdp-ingest/prod",
        "FDP_S3_ENDPOINT_URL": aws_env,
        "FDP_AWS_REGION": "us-east-1",
        "FDP_ALPHAVANTAGE_API_KEY": KEY,
        "FDP_ALPHAVANTAGE_BASE_URL": vendor.url,
        "FDP_WAREHOUSE_URL": f"duckdb:///{tmp_path}/warehouse.duckdb",  # none in the bucket
    }.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(main, ["ingest", "--symbols", "AAPL,MSFT", "--date", str(DAY)])

    assert result.exit_code == 0, result.output
    prefix = f"prod/raw/source=alpha_vantage/ingest_date={DAY}"
    stored = s3.get_object(Bucket="fdp-ingest", Key=f"{prefix}/symbol=AAPL.json")["Body"].read()
    assert stored == vendor_doc("AAPL", 100)
    meta = json.loads(
        s3.get_object(Bucket="fdp-ingest", Key=f"{prefix}/symbol=MSFT.meta.json")["Body"].read()
    )
    assert meta["rows"] == 100
    assert meta["path"] == f"s3://fdp-ingest/{prefix}/symbol=MSFT.json"
    quota = s3.get_object(Bucket="fdp-ingest", Key="prod/state/alpha_vantage/quota.json")
    assert json.loads(quota["Body"].read())["calls"] == 2
    assert RawZone(Settings()).read_batch("alpha_vantage", DAY).df.height == 200


def test_vendor_json_errors_are_data_errors() -> None:
    assert issubclass(VendorResponseError, DataError)
