"""Writers of one lake at once, as separate OS processes: nothing lost, nothing half written.

Each attack starts its processes at the same instant (each waits on a "go" file after its
imports) or stops one at a chosen point (it touches a file and waits, or is SIGKILLed), and
checks the lake against the same runs made one after the other in a fresh lake. moto is the
LOCAL STAND-IN for AWS S3.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import shutil
import signal
import subprocess
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bars import land, random_bars, unvalidated
from fdp import lake
from fdp.calendar import sessions
from fdp.config import Settings
from fdp.errors import TransientError
from fdp.records import EnrichedStockRecord
from fdp.transform import transform
from fdp.warehouse import connect, load_run
from fdp.warehouse.loader import reconcile_run
from test_lease import spawn, wait_for

DAYS = sessions(dt.date(2024, 1, 2), dt.date(2024, 5, 31))
HISTORY, D1, D2 = DAYS[:-2], DAYS[-2], DAYS[-1]
"""The history, then two run dates of one month (both runs rewrite its partition)."""
SYMBOLS = [f"S{i:03d}" for i in range(200)]
BARS = random_bars(SYMBOLS, DAYS, seed=11).with_columns(
    split_coefficient=pl.when(pl.col("trade_date") >= D1).then(1.0).otherwise("split_coefficient")
)
"""No split on D1 or D2: a split would recompute its symbol's whole history."""
FIXED = BARS.filter((pl.col("symbol") == "S000") & (pl.col("trade_date") == D1)).with_columns(
    close=pl.col("close") * 1.1
)
"""A correction of a bar of D1, landed with D2's batch."""
NOW = dt.datetime(2024, 6, 3, 12, tzinfo=dt.UTC)
ROUNDS = 5
KEY = list(lake.KEY)

pytestmark = pytest.mark.slow


def land_days(settings: Settings, d2_bars: pl.DataFrame | None = None) -> None:
    """The history batch (transformed here) and the batches of D1 and D2 (not yet)."""
    land(settings, HISTORY[-1], BARS.filter(pl.col("trade_date").is_in(HISTORY)))
    land(settings, D1, BARS.filter(pl.col("trade_date") == D1))
    land(settings, D2, BARS.filter(pl.col("trade_date") == D2) if d2_bars is None else d2_bars)
    transform(settings, HISTORY[-1], gate=unvalidated(settings, HISTORY[-1]), now=NOW)


def rows(settings: Settings) -> pl.DataFrame:
    """The whole lake through fsspec (local or S3), in key order."""
    parts = [lake.read_partition(settings, p) for p in lake.partitions(settings)]
    return pl.concat(parts).sort(KEY)


def assert_same_rows(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Equal rows, indicators to 1e-9; when each run computed a row is no part of it."""
    assert_frame_equal(
        got.drop("processing_timestamp"),
        want.drop("processing_timestamp"),
        check_exact=False,
        rel_tol=1e-9,
        abs_tol=1e-12,
    )


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The lake after the history, D1 and D2 transformed one after the other."""
    settings = Settings(data_dir=str(tmp_path_factory.mktemp("sequential") / "data"))
    land_days(settings)
    transform(settings, D1, gate=unvalidated(settings, D1))
    transform(settings, D2, gate=unvalidated(settings, D2))
    return rows(settings)


TRANSFORM = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    from fdp.config import Settings
    from fdp.quality.gate import Gate
    from fdp.transform import transform

    day, ready, go = sys.argv[1:4]
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.0005)
    run_date = dt.date.fromisoformat(day)
    transform(Settings(), run_date, gate=Gate(Settings(), "simulator", run_date, override="test"))
    """
)


def run_at_once(
    code: str, runs: list[list[str]], env: dict[str, str], where: Path
) -> list[subprocess.Popen[bytes]]:
    """Start one process per argument list, release them together, wait for them all."""
    go = where / f"go-{uuid.uuid4().hex}"
    procs, readies = [], []
    for args in runs:
        readies.append(where / f"ready-{uuid.uuid4().hex}")
        procs.append(spawn(code, *args, str(readies[-1]), str(go), env=env))
    for ready, proc in zip(readies, procs, strict=True):
        wait_for(ready, proc)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    return procs


Lake = tuple[Settings, dict[str, str]]
"""Settings for a fresh lake, and the environment that names it to another process."""


@pytest.fixture
def s3_lake(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """A fresh lake in its own bucket on moto's S3."""
    import boto3

    monkeypatch.setenv("FDP_S3_ENDPOINT_URL", aws_env)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1").create_bucket(Bucket=bucket)
    settings = Settings(data_dir=f"s3://{bucket}/data", s3_endpoint_url=aws_env)
    return settings, {"FDP_DATA_DIR": settings.data_dir, "FDP_S3_ENDPOINT_URL": aws_env}


@pytest.fixture(params=["local", "s3_moto_local_standin"])
def lake_at(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """A fresh lake on a local disk, or on moto's S3."""
    if request.param == "local":
        settings = Settings(data_dir=str(tmp_path / "data"))
        return settings, {"FDP_DATA_DIR": settings.data_dir}
    lake_on_s3: Lake = request.getfixturevalue("s3_lake")
    return lake_on_s3


def test_two_transforms_of_one_month_at_once_lose_no_row(
    lake_at: Lake, sequential: pl.DataFrame, tmp_path: Path
) -> None:
    base, env = lake_at
    for round_ in range(ROUNDS):
        settings = Settings(data_dir=f"{base.data_dir}/round-{round_}")
        land_days(settings)
        run_at_once(
            TRANSFORM,
            [[D1.isoformat()], [D2.isoformat()]],
            env | {"FDP_DATA_DIR": settings.data_dir},
            tmp_path,
        )
        assert_same_rows(rows(settings), sequential)
        manifests = {day: lake.changed_keys(settings, day) for day in (D1, D2)}
        for day, keys in manifests.items():
            batch = BARS.filter(pl.col("trade_date") == day).select(KEY)
            assert batch.join(keys, on=KEY, how="anti").is_empty(), f"{day}: keys missing"
        loaded = pl.concat(manifests.values()).unique().sort(KEY)
        assert_frame_equal(loaded, BARS.filter(pl.col("trade_date") >= D1).select(KEY).sort(KEY))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes a fresh warehouse each call: a DuckDB file, or a schema of the test database."""
    if request.param == "duckdb":
        return lambda: f"duckdb:///{tmp_path / f'wh-{uuid.uuid4().hex}.duckdb'}"
    import psycopg

    database = request.getfixturevalue("pg_database")

    def schema() -> str:
        name = f"t_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(database, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA {name}")
        return f"{database}?options={quote(f'-csearch_path={name}')}"

    return schema


def warehouse_rows(settings: Settings) -> pl.DataFrame:
    """The whole fact table, typed as the record, in key order."""
    table = connect(settings.warehouse_url, settings).query(
        "SELECT * FROM fact_stock_prices ORDER BY symbol, trade_date"
    )
    schema = EnrichedStockRecord.polars_schema()
    return pl.DataFrame(table).select([pl.col(n).cast(t) for n, t in schema.items()])


LOAD = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    from fdp.config import Settings
    from fdp.warehouse import load_run

    day, ready, go = sys.argv[1:4]
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.0005)
    load_run(Settings(), dt.date.fromisoformat(day))
    """
)


def test_two_loads_at_once_both_load_and_reconcile(
    new_warehouse: Callable[[], str], sequential: pl.DataFrame, tmp_path: Path
) -> None:
    lake_settings = Settings(data_dir=str(tmp_path / "data"))
    land_days(lake_settings)
    transform(lake_settings, D1, gate=unvalidated(lake_settings, D1))
    transform(lake_settings, D2, gate=unvalidated(lake_settings, D2))
    for _ in range(3):
        settings = lake_settings.model_copy(update={"warehouse_url": new_warehouse()})
        load_run(settings, HISTORY[-1])
        env = {"FDP_DATA_DIR": settings.data_dir, "FDP_WAREHOUSE_URL": settings.warehouse_url}
        run_at_once(LOAD, [[D1.isoformat()], [D2.isoformat()]], env, tmp_path)
        assert reconcile_run(settings, D1) == reconcile_run(settings, D2) == len(SYMBOLS)
        assert_frame_equal(warehouse_rows(settings), rows(settings))
        assert_same_rows(warehouse_rows(settings), sequential)


PAUSED_LOAD = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    from fdp.config import Settings
    from fdp.warehouse import loader

    day, read, go = sys.argv[1:4]
    lake_batch = loader.lake_batch

    def paused(*args, **kwargs):
        batch = lake_batch(*args, **kwargs)
        rows = list(batch.slices())  # the lake read now, the commit after the pause
        Path(read).touch()
        while not Path(go).exists():
            time.sleep(0.01)
        return loader.Batch(batch.keys, lambda: iter(rows))

    loader.lake_batch = paused
    loader.load_run(Settings(), dt.date.fromisoformat(day))
    """
)
TRANSFORM_AND_LOAD = textwrap.dedent(
    """
    import datetime as dt, sys
    from fdp.config import Settings
    from fdp.quality.gate import Gate
    from fdp.transform import transform
    from fdp.warehouse import load_run

    day = dt.date.fromisoformat(sys.argv[1])
    transform(Settings(), day, gate=Gate(Settings(), "simulator", day, override="lease test"))
    load_run(Settings(), day)
    """
)


def test_a_load_racing_a_transform_never_commits_older_rows(
    new_warehouse: Callable[[], str], tmp_path: Path
) -> None:
    """The load of D1 has read the lake and not committed yet when D2's transform corrects a
    bar of D1 and D2's load runs. Unserialised, D1's load would commit the old bar after
    D2's load committed the new one. Serialised, whichever order, the warehouse ends as the
    lake."""
    settings = Settings(data_dir=str(tmp_path / "data"), warehouse_url=new_warehouse())
    land_days(settings, pl.concat([BARS.filter(pl.col("trade_date") == D2), FIXED]))
    transform(settings, D1, gate=unvalidated(settings, D1))
    load_run(settings, HISTORY[-1])
    env = {"FDP_DATA_DIR": settings.data_dir, "FDP_WAREHOUSE_URL": settings.warehouse_url}
    read, go = tmp_path / "read", tmp_path / "go"
    first = spawn(PAUSED_LOAD, D1.isoformat(), str(read), str(go), env=env)
    wait_for(read, first)
    second = spawn(TRANSFORM_AND_LOAD, D2.isoformat(), env=env)
    with contextlib.suppress(subprocess.TimeoutExpired):  # time to overtake, if not held back
        second.wait(timeout=5)
    go.touch()
    for proc in (first, second):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    assert reconcile_run(settings, D1) == len(SYMBOLS)
    assert reconcile_run(settings, D2) == len(SYMBOLS) + 1
    fixed = rows(settings).filter((pl.col("symbol") == "S000") & (pl.col("trade_date") == D1))
    assert fixed["close"].to_list() == FIXED["close"].to_list()
    assert_frame_equal(warehouse_rows(settings), rows(settings))


def digests(settings: Settings) -> dict[str, str]:
    """Each visible partition file's digest, by path under the table."""
    root = Path(lake.table_url(settings))
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("part-0.parquet"))
    }


def staged(settings: Settings) -> dict[str, str]:
    """Every hidden staged file under curated/, with its digest."""
    root = Path(settings.path(lake.CURATED))
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob(".*.tmp"))
    }


STOPPED_PUBLISH = textwrap.dedent(
    """
    import datetime as dt, sys, threading, time
    from pathlib import Path
    from fsspec.implementations.local import LocalFileSystem
    from fdp.config import Settings
    from fdp.quality.gate import Gate
    from fdp.transform import transform

    day, renames, stopped = dt.date.fromisoformat(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    now = dt.datetime.fromisoformat(sys.argv[4])
    mv, done, lock = LocalFileSystem.mv, [0], threading.Lock()

    def stop_after_some(self, source, target, **kwargs):
        if "stock_prices" in str(target):
            with lock:
                done[0] += 1
                stop = done[0] > renames
            if stop:
                Path(stopped).touch()
                time.sleep(600)
        return mv(self, source, target, **kwargs)

    LocalFileSystem.mv = stop_after_some
    gate = Gate(Settings(), "simulator", day, override="lease test")
    transform(Settings(), day, gate=gate, now=now)
    """
)
LATE = BARS.filter(
    (pl.col("symbol") == "S001") & pl.col("trade_date").is_in([DAYS[30], DAYS[60]])
).with_columns(close=pl.col("close") * 0.9)
"""Corrections of February and March bars: a run that publishes four partitions."""


@pytest.mark.parametrize("renames", [0, 1, 3])
def test_a_killed_transform_leaves_each_partition_old_or_new_and_frees_the_lake_at_once(
    renames: int, tmp_path: Path
) -> None:
    base = Settings(data_dir=str(tmp_path / "base"))
    land_days(base)
    land(base, D1, pl.concat([BARS.filter(pl.col("trade_date") == D1), LATE]))
    reference = Settings(data_dir=str(tmp_path / "reference"))
    victim = Settings(data_dir=str(tmp_path / "victim"), lease_timeout_s=0)
    for copy in (reference, victim):
        shutil.copytree(base.data_dir, copy.data_dir)
    old = digests(base)
    transform(reference, D1, gate=unvalidated(reference, D1), now=NOW)
    new = digests(reference)
    touched = {k for k in new if new[k] != old.get(k)}
    assert len(touched) == 4

    stopped = tmp_path / "stopped"
    proc = spawn(
        STOPPED_PUBLISH,
        D1.isoformat(),
        str(renames),
        str(stopped),
        NOW.isoformat(),
        env={"FDP_DATA_DIR": victim.data_dir},
    )
    wait_for(stopped, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    now_there = digests(victim)
    assert now_there.keys() == new.keys()
    assert sum(now_there[k] == new[k] != old[k] for k in touched) == renames
    assert all(now_there[k] in (old[k], new[k]) for k in touched)
    assert staged(victim), "the killed run should have left staged files"
    lease_file = Path(victim.path(lake.CURATED, lake.LEASE)).read_text()
    assert f'"pid": {proc.pid}' in lease_file

    transform(
        victim, D1, gate=unvalidated(victim, D1), now=NOW
    )  # a zero wait: the OS freed the dead run's lock
    assert staged(victim) == {}
    assert digests(victim) == new
    assert_frame_equal(lake.changed_keys(victim, D1), lake.changed_keys(reference, D1))


STUCK = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    from fdp.transform import plan, transform
    from fdp.config import Settings
    from fdp.quality.gate import Gate

    day, stuck = dt.date.fromisoformat(sys.argv[1]), sys.argv[2]

    def stuck_planning(*args, **kwargs):
        Path(stuck).touch()
        time.sleep(600)

    plan._plan = stuck_planning
    transform(Settings(), day, gate=Gate(Settings(), "simulator", day, override="lease test"))
    """
)


def test_a_killed_writer_on_s3_holds_the_lake_until_its_lease_expires_moto_local_standin(
    s3_lake: Lake, sequential: pl.DataFrame, tmp_path: Path
) -> None:
    settings, env = s3_lake
    land_days(settings)
    stuck = tmp_path / "stuck"
    proc = spawn(STUCK, D1.isoformat(), str(stuck), env=env | {"FDP_LEASE_TTL_S": "2"})
    wait_for(stuck, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    impatient = settings.model_copy(update={"lease_timeout_s": 0.5})
    with pytest.raises(TransientError, match=f"pid {proc.pid} .*transform {D1}"):
        transform(impatient, D1, gate=unvalidated(impatient, D1))
    transform(
        settings, D1, gate=unvalidated(settings, D1)
    )  # waits out the dead run's TTL, then takes its lease over
    transform(settings, D2, gate=unvalidated(settings, D2))
    assert_same_rows(rows(settings), sequential)


STOPPED_STAGING = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    from fdp import lake
    from fdp.config import Settings
    from fdp.quality.gate import Gate
    from fdp.transform import transform

    day, stopped, go = dt.date.fromisoformat(sys.argv[1]), sys.argv[2], sys.argv[3]
    stage = lake._stage

    def stop_once_staged(*args, **kwargs):
        files = stage(*args, **kwargs)
        Path(stopped).touch()
        while not Path(go).exists():
            time.sleep(0.01)
        return files

    lake._stage = stop_once_staged
    transform(Settings(), day, gate=Gate(Settings(), "simulator", day, override="lease test"))
    """
)


def test_a_live_runs_staged_files_are_never_removed_by_another_run(
    sequential: pl.DataFrame, tmp_path: Path
) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"), lease_timeout_s=1)
    land_days(settings)
    stopped, go = tmp_path / "stopped", tmp_path / "go"
    env = {"FDP_DATA_DIR": settings.data_dir}
    live = spawn(STOPPED_STAGING, D1.isoformat(), str(stopped), str(go), env=env)
    wait_for(stopped, live)
    files = staged(settings)
    assert files, "the live run has staged its partition"
    with pytest.raises(TransientError, match=f"pid {live.pid} .*transform {D1}"):
        transform(settings, D2, gate=unvalidated(settings, D2))
    assert staged(settings) == files
    go.touch()
    _, err = live.communicate(timeout=300)
    assert live.returncode == 0, err.decode()
    transform(settings, D2, gate=unvalidated(settings, D2))
    assert_same_rows(rows(settings), sequential)


def test_taking_the_lease_clears_what_killed_writers_left_staged(settings: Settings) -> None:
    land_days(settings)
    transform(settings, D1, gate=unvalidated(settings, D1))
    curated = Path(settings.path(lake.CURATED))
    kept = {p: p.read_bytes() for p in curated.rglob("*") if p.is_file() and p.name != lake.LEASE}
    assert len(kept) > 5
    leftovers = [
        curated / "stock_prices/year=2024/month=05/.part-0.parquet.dead.tmp",
        curated / f"_changes/run_date={D2}/.changes.parquet.dead.tmp",
        curated / "_staging/deadrun/year=2024/month=5/part-00000.parquet",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    partition, manifest, _ = leftovers
    with lake.lease(settings, "next writer"):
        assert not partition.exists()
        assert not manifest.exists()
        assert not (curated / "_staging").exists()
        assert {p: p.read_bytes() for p in kept} == kept
