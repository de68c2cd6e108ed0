"""The raw zone on ``s3://`` against moto's S3 in server mode on loopback.

moto is a LOCAL STAND-IN for AWS S3 (no AWS account here): the real s3fs/botocore stack
talks HTTP to it, so paths, PUTs and listings go through the same code as on AWS.
"""

from __future__ import annotations

import datetime as dt

import pytest

from fdp.config import Settings
from fdp.sources.landing import RawZone
from fdp.storage import filesystem

DAY = dt.date(2026, 11, 20)
OTHER_DAY = dt.date(2026, 11, 19)
BUCKET = "fdp-raw-test"


def doc(symbol: str, close: str = "101.0000") -> bytes:
    return (
        b'{"Meta Data": {"2. Symbol": "' + symbol.encode() + b'"}, "Time Series (Daily)": '
        b'{"2026-11-20": {"1. open": "100.0", "2. high": "102.0", "3. low": "99.0", '
        b'"4. close": "' + close.encode() + b'", "5. volume": "1000"}}}'
    )


@pytest.fixture
def s3_settings(aws_env: str) -> Settings:
    moto_endpoint = aws_env
    settings = Settings(
        data_dir=f"s3://{BUCKET}/lake", s3_endpoint_url=moto_endpoint, aws_region="us-east-1"
    )
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return settings


def objects(settings: Settings) -> dict[str, bytes]:
    fs, root = filesystem(settings.path("raw"), settings)
    fs.invalidate_cache()
    return {p: fs.cat_file(p) for p in sorted(fs.find(root))}


def test_s3_land_read_and_replace_moto_local_standin(s3_settings: Settings) -> None:
    zone = RawZone(s3_settings)
    landed = zone.land("alpha_vantage", OTHER_DAY, "AAPL", doc("AAPL"), rows=1)
    zone.land("alpha_vantage", DAY, "AAPL", doc("AAPL"), rows=1, url="http://x/q?apikey=K&a=1")
    zone.land("alpha_vantage", DAY, "MSFT", doc("MSFT"), rows=1)
    before = objects(s3_settings)

    assert (
        landed.path
        == f"s3://{BUCKET}/lake/raw/source=alpha_vantage/ingest_date={OTHER_DAY}/symbol=AAPL.json"
    )
    assert zone.metadata("alpha_vantage", DAY, "AAPL")["url"] == "http://x/q?apikey=***&a=1"
    assert zone.read_batch("alpha_vantage", DAY).df["symbol"].sort().to_list() == ["AAPL", "MSFT"]

    zone.land("alpha_vantage", DAY, "AAPL", doc("AAPL"), rows=1)
    assert objects(s3_settings) == before  # identical bytes: nothing rewritten

    zone.land("alpha_vantage", DAY, "AAPL", doc("AAPL", "105.0000"), rows=1)
    after = objects(s3_settings)
    changed = {p for p in after if after[p] != before.get(p)}
    prefix = f"{BUCKET}/lake/raw/source=alpha_vantage/ingest_date={DAY}"
    assert changed == {f"{prefix}/symbol=AAPL.json", f"{prefix}/symbol=AAPL.meta.json"}
    assert set(after) == set(before)
    closes = RawZone(s3_settings).read_batch("alpha_vantage", DAY).df.sort("symbol")["close"]
    assert closes.to_list() == [105.0, 101.0]


def test_s3_endpoint_comes_from_the_environment_moto_local_standin(
    s3_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FDP_S3_ENDPOINT_URL", str(s3_settings.s3_endpoint_url))
    monkeypatch.setenv("FDP_DATA_DIR", s3_settings.data_dir)
    RawZone(s3_settings).land("simulator", DAY, "IBM", doc("IBM"), rows=1)

    fs, path = filesystem(f"{s3_settings.data_dir}/raw")  # no settings: read from FDP_*
    assert fs.exists(f"{path}/source=simulator/ingest_date={DAY}/symbol=IBM.json")
