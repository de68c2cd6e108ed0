"""The sources' errors: what a vendor call, an answer or an ingest run can fail with.

Each is terminal or transient by class (``fdp.errors``): the client retries the transient ones,
the orchestrator decides from the class alone.
"""

from __future__ import annotations

from fdp.errors import DataError, TerminalError, TransientError


class IngestFailedError(TerminalError):
    """Some symbols could not be landed; the run must not look successful."""


class InvalidRequestError(TerminalError):
    """The vendor rejected the call itself (unknown symbol, bad parameter, HTTP 4xx)."""


class PremiumEndpointError(TerminalError):
    """The function needs a premium key; TIME_SERIES_DAILY is the free-tier equivalent."""


class VendorResponseError(DataError):
    """The answer is not a usable time series: malformed JSON, or the series is missing."""


class RateLimitError(TransientError):
    """The vendor throttled the call (per-minute or burst limit, or HTTP 429)."""


class DailyQuotaError(TransientError):
    """The day's call quota is used up; ``retry_after`` is the time to the next UTC day."""


class VendorUnavailableError(TransientError):
    """No usable answer in time: timeout, network fault or HTTP 5xx."""
