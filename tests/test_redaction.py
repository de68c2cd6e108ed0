"""The one redaction: secrets by value, URL passwords and secret parameters, in any text."""

from __future__ import annotations

import logging

import pytest

from fdp.config import Settings
from fdp.errors import DataError, TransientError
from fdp.redaction import MASK, install_log_redaction, redact, register_secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://h/q?apikey=abc&symbol=X", "https://h/q?apikey=***&symbol=X"),
        ("https://h/q?symbol=X&APIKEY=abc", "https://h/q?symbol=X&APIKEY=***"),
        (
            'GET https://h/q?a=1&token=t0k "HTTP/1.1 200"',
            'GET https://h/q?a=1&token=*** "HTTP/1.1 200"',
        ),
        ("https://h/q?monkey=1", "https://h/q?monkey=1"),
        ("via http://proxy-user:s3cr%40t@proxy:3128/x", "via http://proxy-user:***@proxy:3128/x"),
        ("postgresql://fdp:pw@db:5432/market", "postgresql://fdp:***@db:5432/market"),
        ("postgresql://fdp@db:5432/market", "postgresql://fdp@db:5432/market"),
    ],
)
def test_urls_lose_their_secrets(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_registered_secret_is_masked_wherever_it_appears_and_however_encoded() -> None:
    secret = "k3y/with+chars=="
    register_secret(secret)
    text = f"echo {secret} and {secret.replace('/', '%2F').replace('+', '%2B').replace('=', '%3D')}"
    assert secret not in redact(text)
    assert "k3y%2Fwith" not in redact(text)
    assert redact(text).count(MASK) == 2


def test_settings_register_the_api_key_and_url_passwords() -> None:
    Settings(
        alphavantage_api_key="AVKEY-REGISTERED-1",
        warehouse_url="postgresql://u:pg-pass-registered@h/db",
    )
    assert redact("said AVKEY-REGISTERED-1 and pg-pass-registered") == "said *** and ***"


def test_errors_redact_their_message_and_fields() -> None:
    register_secret("ERRKEY-0001")
    error = DataError("bad ERRKEY-0001", file="s3://b/x?apikey=ERRKEY-0001", hint="h ERRKEY-0001")
    assert "ERRKEY-0001" not in str(error)
    assert "ERRKEY-0001" not in "".join(error.details().values())
    later = TransientError("learnt later: LATERKEY-02")
    register_secret("LATERKEY-02")
    assert "LATERKEY-02" not in str(later)


def test_log_records_are_redacted_whatever_logger_or_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent
    register_secret("LOGKEY-0003")
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("calling %s", "https://h/?apikey=LOGKEY-0003")
        try:
            raise ValueError("inner LOGKEY-0003")
        except ValueError:
            logging.getLogger("other").exception("failed")
    assert "LOGKEY-0003" not in caplog.text
    assert "ValueError" in caplog.text
