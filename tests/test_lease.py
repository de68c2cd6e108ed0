"""The single-writer lease itself, between real processes and threads, on a local lock file
and on moto's S3 (a LOCAL STAND-IN for AWS: the real botocore stack sends the conditional
requests over HTTP to it)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import fdp
from bars import land, random_bars, unvalidated
from fdp import lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.errors import ConfigError, TransientError
from fdp.lease import hold
from fdp.records import EnrichedStockRecord, Frame
from fdp.transform import transform

SRC = Path(fdp.__file__).resolve().parents[1]
DAYS = sessions(dt.date(2024, 1, 2), dt.date(2024, 2, 29))
TTL_S = 2.0
"""The S3 lease TTL of these tests: a lease not renewed is taken over after 3-4 s."""

HOLD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from fdp.config import Settings
    from fdp.lease import hold

    url, ready, release = sys.argv[1:4]
    with hold(url, Settings(), "holder under test"):
        # written aside and renamed: the waiting test never reads it half written
        Path(ready + ".tmp").write_text(str(os.getpid()))
        Path(ready + ".tmp").rename(ready)
        while not Path(release).exists():
            time.sleep(0.01)
    """
)


@dataclass(frozen=True)
class Place:
    """Where a lease lives, the settings to take it with, and how to read it from outside."""

    kind: str
    url: str
    settings: Settings
    env: dict[str, str]
    s3: Any = None

    def with_timeout(self, seconds: float) -> Settings:
        return self.settings.model_copy(update={"lease_timeout_s": seconds})

    def stored(self) -> dict[str, Any] | None:
        """The lease file's or object's content (None: empty file, or no object)."""
        if self.s3 is None:
            text = Path(self.url).read_text()
            return json.loads(text) if text else None
        bucket, _, key = self.url.removeprefix("s3://").partition("/")
        try:
            return dict(json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        except self.s3.exceptions.NoSuchKey:
            return None


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def _s3_settings(aws_env: str, bucket: str) -> Settings:
    _s3(aws_env).create_bucket(Bucket=bucket)
    return Settings(
        data_dir=f"s3://{bucket}/data",
        s3_endpoint_url=aws_env,
        aws_region="us-east-1",
        lease_ttl_s=TTL_S,
        lease_timeout_s=60,
    )


@pytest.fixture(params=["local", "s3_moto_local_standin"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "local":
        settings = Settings(data_dir=str(tmp_path / "data"), lease_timeout_s=60)
        env = {"FDP_DATA_DIR": settings.data_dir}
        return Place("local", settings.path("curated", "_lease"), settings, env)
    aws_env = request.getfixturevalue("aws_env")
    settings = _s3_settings(aws_env, f"lease-{uuid.uuid4().hex[:12]}")
    env = {
        "FDP_DATA_DIR": settings.data_dir,
        "FDP_S3_ENDPOINT_URL": aws_env,
        "FDP_AWS_REGION": "us-east-1",
        "FDP_LEASE_TTL_S": str(TTL_S),
    }
    return Place("s3", settings.path("curated", "_lease"), settings, env, _s3(aws_env))


def spawn(code: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=os.environ | {"PYTHONPATH": str(SRC), "TZ": "UTC"} | env,
        stderr=subprocess.PIPE,
    )


def wait_for(path: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until ``path`` exists; a process that ends first fails the test with its stderr."""
    for _ in range(6000):
        if path.exists():
            return
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode} first: {proc.stderr and proc.stderr.read()!r}")
        time.sleep(0.01)
    pytest.fail(f"{path} never appeared")


@pytest.fixture
def holder(place: Place, tmp_path: Path) -> Iterator[Callable[[], tuple[int, Path]]]:
    """Start a process holding the lease; returns its pid and the file that releases it."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[int, Path]:
        ready, release = tmp_path / f"ready-{len(procs)}", tmp_path / f"release-{len(procs)}"
        procs.append(spawn(HOLD, place.url, str(ready), str(release), env=place.env))
        wait_for(ready, procs[-1])
        return int(ready.read_text()), release

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_moto_honours_the_conditional_writes_the_lease_needs_moto_local_standin(
    aws_env: str,
) -> None:
    """dependencies.md says moto 5.2.5 honours If-None-Match and If-Match: checked here, for
    the PUT and the DELETE the lease sends."""
    from botocore.exceptions import ClientError

    s3 = _s3(aws_env)
    s3.create_bucket(Bucket="conditional")

    def refused(call: Callable[[], object]) -> str:
        with pytest.raises(ClientError) as caught:
            call()
        return str(caught.value.response["Error"]["Code"])

    first = s3.put_object(Bucket="conditional", Key="k", Body=b"1", IfNoneMatch="*")["ETag"]
    put = s3.put_object
    assert refused(lambda: put(Bucket="conditional", Key="k", Body=b"2", IfNoneMatch="*")) == (
        "PreconditionFailed"
    )
    assert refused(lambda: put(Bucket="conditional", Key="k", Body=b"3", IfMatch='"0"')) == (
        "PreconditionFailed"
    )
    second = put(Bucket="conditional", Key="k", Body=b"4", IfMatch=first)["ETag"]
    assert second != first
    assert refused(lambda: s3.delete_object(Bucket="conditional", Key="k", IfMatch=first)) == (
        "PreconditionFailed"
    )
    assert s3.get_object(Bucket="conditional", Key="k")["Body"].read() == b"4"
    s3.delete_object(Bucket="conditional", Key="k", IfMatch=second)
    assert s3.list_objects_v2(Bucket="conditional")["KeyCount"] == 0


def test_a_second_writer_waits_then_fails_transient_naming_the_holder(
    place: Place, holder: Callable[[], tuple[int, Path]]
) -> None:
    """On S3 the wait is three TTLs: without its heartbeat the holder would have lost its lease."""
    pid, release = holder()
    wait_s = 0.3 if place.kind == "local" else 3 * TTL_S
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with (
        pytest.raises(TransientError) as busy,
        hold(place.url, place.with_timeout(wait_s), "second writer"),
    ):
        pytest.fail("took a lease another process holds")
    message = str(busy.value)
    assert f"pid {pid} on {socket.gethostname()} (holder under test) since " in message
    since = dt.datetime.fromisoformat(message.split(" since ", 1)[1][:25])
    assert since <= started + dt.timedelta(seconds=1)
    assert busy.value.file == place.url
    stored = place.stored()
    assert stored is not None
    assert stored["pid"] == pid
    release.touch()
    with hold(place.url, place.settings, "after the holder") as lease:
        lease.check()
        mine = place.stored()
        assert mine is not None
        assert (mine["pid"], mine["purpose"]) == (os.getpid(), "after the holder")
    assert place.stored() is None


def test_the_lease_is_reentrant_in_a_thread_and_exclusive_between_threads(place: Place) -> None:
    with hold(place.url, place.settings, "outer"):
        with hold(place.url, place.settings, "inner"):
            pass
        stored = place.stored()
        assert stored is not None
        assert (stored["pid"], stored["purpose"]) == (os.getpid(), "outer")
        outcome: list[str] = []

        def other_thread() -> None:
            try:
                with hold(place.url, place.with_timeout(0.2), "other thread"):
                    outcome.append("took a lease its own process holds")
            except TransientError as exc:
                outcome.append(str(exc))

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert f"pid {os.getpid()} on {socket.gethostname()} (outer)" in outcome[0]
        assert "in another thread of this process" in outcome[0]
    assert place.stored() is None

    inside, most, entries = [0], [0], [0]
    guard = threading.Lock()

    def writer(n: int) -> None:
        for _ in range(10):
            with hold(place.url, place.settings, f"thread {n}"):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.002)
                with guard:
                    inside[0] -= 1
                    entries[0] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (most[0], entries[0]) == (1, 40)


KILLABLE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from fdp.config import Settings
    from fdp.lease import hold

    url, ready = sys.argv[1:3]
    with hold(url, Settings(), "killed holder"):
        # written aside and renamed: the waiting test never reads it half written
        Path(ready + ".tmp").write_text(str(os.getpid()))
        Path(ready + ".tmp").rename(ready)
        time.sleep(600)
    """
)


def test_a_killed_holder_frees_a_lock_file_at_once_and_a_lease_object_at_its_expiry(
    place: Place, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    proc = spawn(KILLABLE, place.url, str(ready), env=place.env)
    wait_for(ready, proc)
    pid = int(ready.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    left = place.stored()
    assert left is not None
    assert left["pid"] == pid  # the dead holder's name stays until the next writer's
    if place.kind == "s3":
        with (
            pytest.raises(TransientError, match=f"pid {pid} .*killed holder"),
            hold(place.url, place.with_timeout(0.5), "too early"),
        ):
            pytest.fail("took a lease before its expiry")
    with hold(place.url, place.with_timeout(0 if place.kind == "local" else 30), "next"):
        stored = place.stored()
        assert stored is not None
        assert stored["pid"] == os.getpid()


TAKEOVER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from fdp.config import Settings
    from fdp.lease import hold

    url, inside, log, go = sys.argv[1:5]
    while not Path(go).exists():
        time.sleep(0.001)
    with hold(url, Settings(), "waiter"):
        fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fails if another is in
        time.sleep(0.3)
        os.close(fd)
        os.unlink(inside)
        with open(log, "a") as out:
            out.write(f"{os.getpid()}\\n")
    """
)


def test_an_expired_lease_is_taken_over_by_one_waiter_at_a_time_moto_local_standin(
    aws_env: str, tmp_path: Path
) -> None:
    settings = _s3_settings(aws_env, "takeover")
    url = settings.path("curated", "_lease")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    dead = {"host": "gone", "pid": 999999, "purpose": "crashed", "since": "2026-01-01T00:00:00"}
    _s3(aws_env).put_object(Bucket=bucket, Key=key, Body=json.dumps(dead | {"ttl_s": 3.0}))
    with (
        pytest.raises(TransientError, match="pid 999999 on gone"),
        hold(url, settings.model_copy(update={"lease_timeout_s": 0.5}), "too early"),
    ):
        pytest.fail("took a lease before its expiry")
    go, log = tmp_path / "go", tmp_path / "log"
    env = {
        "FDP_S3_ENDPOINT_URL": aws_env,
        "FDP_AWS_REGION": "us-east-1",
        "FDP_LEASE_TTL_S": str(TTL_S),
    }
    procs = [spawn(TAKEOVER, url, str(tmp_path / "inside"), str(log), str(go), env=env)]
    procs += [spawn(TAKEOVER, url, str(tmp_path / "inside"), str(log), str(go), env=env)]
    procs += [spawn(TAKEOVER, url, str(tmp_path / "inside"), str(log), str(go), env=env)]
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert sorted(map(int, log.read_text().split())) == sorted(p.pid for p in procs)


def test_a_writer_that_lost_its_lease_publishes_nothing_more_moto_local_standin(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stalled holder whose lease was taken over learns it from its heartbeat: it stops
    before publishing, and its release leaves the new holder's lease alone."""
    monkeypatch.setenv("FDP_S3_ENDPOINT_URL", aws_env)
    settings = _s3_settings(aws_env, "lost")
    url = settings.path("curated", "_lease")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    usurper = {"host": "elsewhere", "pid": 4242, "purpose": "took over", "since": "now"}
    local = Settings(data_dir=str(tmp_path / "local"))
    land(local, DAYS[-1], random_bars(["AAA"], DAYS))
    transform(local, DAYS[-1], gate=unvalidated(local, DAYS[-1]))
    rows = Frame(EnrichedStockRecord, lake.scan(local).collect())
    with lake.lease(settings, "stalled writer") as held:
        _s3(aws_env).put_object(Bucket=bucket, Key=key, Body=json.dumps(usurper))
        lost = ""
        for _ in range(1000):
            try:
                held.check()
            except TransientError as exc:
                lost = str(exc)
                break
            time.sleep(0.01)
        assert "pid 4242 on elsewhere (took over)" in lost
        with pytest.raises(TransientError, match="lost the lease"):
            lake.upsert(settings, [rows])
    stored = json.loads(_s3(aws_env).get_object(Bucket=bucket, Key=key)["Body"].read())
    assert stored == usurper
    assert lake.partitions(settings) == []


FORK = textwrap.dedent(
    """
    import os, sys
    from fdp.config import Settings
    from fdp.errors import TransientError
    from fdp.lease import hold

    url = sys.argv[1]
    with hold(url, Settings(), "parent"):
        child = os.fork()
        if child == 0:
            try:
                with hold(url, Settings(lease_timeout_s=0.2), "child"):
                    os._exit(3)
            except TransientError as exc:
                os._exit(0 if "(parent)" in str(exc) else 4)
        _, status = os.waitpid(child, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_a_forked_child_does_not_inherit_its_parents_lease(tmp_path: Path) -> None:
    proc = spawn(FORK, str(tmp_path / "curated" / "_lease"), env={})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()


def test_a_lake_on_another_object_store_is_a_config_error() -> None:
    settings = Settings(data_dir="gs://bucket/data")
    with (
        pytest.raises(ConfigError, match="gs://bucket/data/curated/_lease"),
        lake.lease(settings, "x"),
    ):
        pytest.fail("a lease without a lock")
