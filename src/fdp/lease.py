"""One writer at a time: a lease on a location, held by every run that writes it.

Two runs that each read a partition, merge and rewrite it lose the rows of whichever renamed
first, and a run that clears "stale" staged files clears the other's. So a writer holds the
lease for its whole run, its reads included (a plan made before another run's publish is
stale):

- on a local (or shared POSIX) filesystem, an ``flock`` on the lease file: the OS drops it
  when its holder dies, however it dies, so the next writer proceeds at once;
- on ``s3://``, a lease object created with a conditional PUT (``If-None-Match: *``), renewed
  by a heartbeat (``If-Match`` its ETag) and deleted (``If-Match``) at the end. A lease not
  renewed for its TTL is taken over with ``If-Match`` on the expired ETag, so of two waiters
  one wins and a crashed writer blocks the lake for one TTL at most. Expiry is judged on the
  store's own clock (the object's ``Last-Modified`` against the response's ``Date``), so no
  host's clock can make a lease expire early.

The file or object says who holds it (host, pid, purpose, since): a writer that waited
``lease_timeout_s`` in vain raises ``TransientError`` naming the holder (the DAG retries it).
Within a process the lease is re-entrant for the thread holding it (the pipeline may hold it
around a stage that takes it too); other threads wait for it as another process would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

from fdp.config import Settings
from fdp.errors import ConfigError, MissingDependencyError, TransientError

POLL_FIRST_S = 0.05
POLL_MAX_S = 2.0
"""A waiter polls after 50 ms, then doubles the delay (jittered) up to 2 s."""
CLOCK_GRAIN_S = 1.0
"""``Last-Modified`` and ``Date`` are whole seconds: expiry waits one more."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a lease: written by the holder once it has it, read by a waiter."""

    host: str
    pid: int
    purpose: str
    since: str

    @classmethod
    def me(cls, purpose: str) -> Holder:
        since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return cls(socket.gethostname(), os.getpid(), purpose, since)

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> Holder | None:
        try:
            return cls(str(doc["host"]), int(doc["pid"]), str(doc["purpose"]), str(doc["since"]))
        except (KeyError, TypeError, ValueError):
            return None

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.purpose}) since {self.since}"


class Lease(Protocol):
    """A lease this process holds."""

    url: str

    def check(self) -> None:
        """Raise ``TransientError`` if the lease was lost (taken over after a stall)."""


class _Taken(Lease, Protocol):
    me: Holder

    def take(self) -> bool:
        """Take the lease if it is free (or expired); say whether it was taken."""

    def holder(self) -> str:
        """Who holds the lease, as last seen (for the waiter's error)."""

    def release(self) -> None: ...


@dataclass(slots=True)
class _Shared:
    """One lease location in this process: the thread lock, and the lease while held."""

    lock: threading.RLock
    taken: _Taken | None = None


_SHARED: dict[str, _Shared] = {}
_GUARD = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child holds none of its parent's leases (it must not release them either),
    and shares no S3 connection with it."""
    global _GUARD
    _SHARED.clear()
    _GUARD = threading.Lock()
    _s3_client.cache_clear()


os.register_at_fork(after_in_child=_forget_after_fork)


@contextlib.contextmanager
def hold(
    url: str, settings: Settings, purpose: str, on_take: Callable[[], None] | None = None
) -> Iterator[Lease]:
    """Hold the lease at ``url`` (a lease file, or an ``s3://`` lease object) for the block.

    Waits up to ``settings.lease_timeout_s`` for another holder, then raises
    ``TransientError`` naming it. ``on_take`` runs when the lease is taken (not when this
    thread already held it): what it clears, no live run is using.
    """
    key = _key(url)
    with _GUARD:
        shared = _SHARED.setdefault(key, _Shared(threading.RLock()))
    started = time.monotonic()
    if not shared.lock.acquire(timeout=settings.lease_timeout_s):
        raise _busy(url, _holder_of(shared), settings.lease_timeout_s)
    try:
        taken, outer = shared.taken, shared.taken is None
        if taken is None:
            deadline = started + settings.lease_timeout_s
            lease = _lease_for(url, settings, purpose)
            taken = shared.taken = _wait(lease, deadline, settings.lease_timeout_s)
        try:
            taken.check()
            if outer and on_take is not None:
                on_take()
            yield taken
        finally:
            if outer:
                shared.taken = None
                taken.release()
    finally:
        shared.lock.release()


def _holder_of(shared: _Shared) -> str:
    taken = shared.taken
    return f"{taken.me if taken else f'pid {os.getpid()}'}, in another thread of this process"


def _key(url: str) -> str:
    return url if url.startswith("s3://") else str(Path(_local_path(url)).absolute())


def _local_path(url: str) -> str:
    if url.startswith("file://"):
        return url.removeprefix("file://")
    if "://" in url:
        raise ConfigError(
            f"no single-writer lease for {url}: use a local path or s3://",
            field="FDP_DATA_DIR",
        )
    return url


def _lease_for(url: str, settings: Settings, purpose: str) -> _Taken:
    holder = Holder.me(purpose)
    if url.startswith("s3://"):
        return _LeaseObject(url, settings, holder)
    return _LeaseFile(_local_path(url), holder)


def _wait(lease: _Taken, deadline: float, timeout: float) -> _Taken:
    """Poll ``lease`` with jittered exponential backoff until taken or ``deadline``."""
    delay = POLL_FIRST_S
    while not lease.take():
        left = deadline - time.monotonic()
        if left <= 0:
            raise _busy(lease.url, lease.holder(), timeout)
        time.sleep(min(left, delay * random.uniform(0.5, 1.0)))
        delay = min(2 * delay, POLL_MAX_S)
    return lease


def _busy(url: str, holder: str, waited: float) -> TransientError:
    return TransientError(
        f"another run is writing: the lease {url} is held by {holder}; waited {waited:g} s",
        file=url,
        hint="retry when that run ends (FDP_LEASE_TIMEOUT_S sets how long a writer waits)",
    )


class _LeaseFile:
    """An ``flock`` on a local file, which then holds the holder's name."""

    def __init__(self, path: str, holder: Holder) -> None:
        self.url, self.me = path, holder
        self.fd: int | None = None

    def take(self) -> bool:
        Path(self.url).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.url, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(self.me)).encode(), 0)
        self.fd = fd
        return True

    def holder(self) -> str:
        try:
            doc = json.loads(Path(self.url).read_text())
        except (OSError, ValueError):
            doc = {}
        return str(Holder.parse(doc) or "a writer that has not written its name yet")

    def check(self) -> None:
        """An OS lock is never lost while its process lives."""

    def release(self) -> None:
        """Clear the name, then unlock: an empty file means nobody holds the lease."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


@dataclass(frozen=True, slots=True)
class _Seen:
    """The lease object as a waiter read it."""

    etag: str
    doc: dict[str, Any]
    expired: bool


class _LeaseObject:
    """A lease object on S3: conditional create, heartbeat, takeover after expiry, delete."""

    def __init__(self, url: str, settings: Settings, holder: Holder) -> None:
        self.url, self.me, self.ttl = url, holder, settings.lease_ttl_s
        self.bucket, _, self.key = url.removeprefix("s3://").partition("/")
        self.client = _s3_client(settings.s3_endpoint_url, settings.aws_region)
        self.token = uuid.uuid4().hex
        self.seq = 0
        self.etag = ""
        self.seen = "a writer whose lease could not be read"
        self.renewed = 0.0
        self.lost: str | None = None
        self.stop = threading.Event()
        self.beat: threading.Thread | None = None

    def take(self) -> bool:
        sent = time.monotonic()
        etag = self._put(IfNoneMatch="*")
        if etag is None:
            seen = self._read()
            if seen is None:  # released meanwhile: try again at once
                return False
            if seen.doc.get("token") == self.token:  # our PUT landed; its answer was lost
                etag = seen.etag
            elif seen.expired:
                sent = time.monotonic()
                etag = self._put(IfMatch=seen.etag)
            if etag is None:
                return False
        self.etag, self.renewed = etag, sent
        self.beat = threading.Thread(target=self._heartbeat, name="fdp-lease", daemon=True)
        self.beat.start()
        return True

    def holder(self) -> str:
        return self.seen

    def check(self) -> None:
        if self.lost is None and time.monotonic() - self.renewed > self.ttl:
            self.lost = f"not renewed for {self.ttl:g} s"
        if self.lost is not None:
            raise TransientError(
                f"lost the lease {self.url}: {self.lost}; stopped before writing more",
                file=self.url,
                hint="the run can be retried: what it published is whole, the rest is not",
            )

    def release(self) -> None:
        self.stop.set()
        if self.beat is not None:
            self.beat.join()
        if self.lost is None:  # a lease left behind by a failed delete expires on its own
            with contextlib.suppress(_ConditionFailedError, TransientError):
                self._call(self.client.delete_object, IfMatch=self.etag)

    def _heartbeat(self) -> None:
        while not self.stop.wait(self.ttl / 3) and self.lost is None:
            self._renew()

    def _renew(self) -> None:
        sent = time.monotonic()
        try:
            etag = self._put(IfMatch=self.etag)
            if etag is None:
                seen = self._read()
                if seen is None:
                    self.lost = "its object was removed"
                    return
                if seen.doc.get("token") != self.token:
                    self.lost = f"taken over by {self.seen}"
                    return
                etag = seen.etag  # our last PUT landed; its answer was lost
        except TransientError as exc:  # the next beat retries; `check` sees a lapse
            if time.monotonic() - self.renewed > self.ttl:
                self.lost = f"not renewed for {self.ttl:g} s ({exc})"
            return
        self.etag, self.renewed = etag, sent

    def _put(self, **condition: str) -> str | None:
        """PUT this holder's lease under ``condition``; its ETag, or None if refused."""
        self.seq += 1
        body = asdict(self.me) | {
            "token": self.token,
            "seq": self.seq,
            "ttl_s": self.ttl,
            "renewed": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }
        try:
            response = self._call(self.client.put_object, Body=json.dumps(body), **condition)
        except _ConditionFailedError:
            return None
        return str(response["ETag"])

    def _read(self) -> _Seen | None:
        """The lease object (None if there is none), remembering who holds it."""
        try:
            response = self._call(self.client.get_object)
        except _ConditionFailedError:
            return None
        try:
            doc = json.loads(response["Body"].read())
        except ValueError:
            doc = {}
        headers = response["ResponseMetadata"].get("HTTPHeaders", {})
        now = parsedate_to_datetime(headers["date"]) if "date" in headers else None
        age = ((now or dt.datetime.now(dt.UTC)) - response["LastModified"]).total_seconds()
        ttl = float(doc.get("ttl_s", self.ttl))
        holder = Holder.parse(doc)
        self.seen = f"{holder or 'an unnamed writer'}, renewed {age:.0f} s ago (TTL {ttl:g} s)"
        return _Seen(str(response["ETag"]), doc, age > ttl + CLOCK_GRAIN_S)

    def _call(self, method: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """``method`` on the lease object; a failed condition or a missing object is
        ``_ConditionFailedError``, an unreachable store a ``TransientError``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(Bucket=self.bucket, Key=self.key, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _REFUSED or status in (404, 409, 412):
                raise _ConditionFailedError(code) from None
            raise TransientError(f"lease {self.url}: S3 answered {code}", file=self.url) from None
        except BotoCoreError as exc:
            raise TransientError(
                f"lease {self.url}: S3 unreachable ({type(exc).__name__})", file=self.url
            ) from None


_REFUSED = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")


class _ConditionFailedError(Exception):
    """A conditional request lost (or found no lease object): another writer was there."""


@functools.cache
def _s3_client(endpoint: str | None, region: str | None) -> Any:
    """One S3 client per endpoint, shared by threads (a client is thread-safe and costs ~50 ms
    to build; boto3's default session is not thread-safe, so each gets a session of its own)."""
    try:
        import boto3
    except ImportError:
        raise MissingDependencyError("boto3", "aws") from None
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region)
