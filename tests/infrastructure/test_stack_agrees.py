"""The production stack, fdp's settings and code agree: one lake bucket whose prefixes are the
zones fdp writes (each with its own lifecycle rule), IAM grants per zone for what each role's
code does, the Glue job's arguments and name, the custom options MWAA turns into ``FDP_*``
settings, and the warehouse those settings resolve to."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from infra_tools import TEMPLATES

from fdp.config import Settings, setting_names
from fdp.engines.spark_job import parse_args
from fdp.orchestration.bundle import STARTUP_SH, WHEEL_EXTRAS
from fdp.quality.report import report_dir
from fdp.rejected import REJECTED
from fdp.sources.alpha_vantage import QUOTA_STATE
from fdp.sources.layout import RAW
from fdp.warehouse.deployment import REDSHIFT_STAGING, from_secret
from fdp.warehouse.redshift import Target

Template = dict[str, Any]
LAKE = "s3://lake"


def load(name: str) -> Template:
    template, errors = decode(str(TEMPLATES / name))
    assert not errors, errors
    return dict(template)


def zone(url: str) -> str:
    """The first path segment below the data directory."""
    assert url.startswith(f"{LAKE}/"), url
    return url.removeprefix(f"{LAKE}/").split("/", 1)[0]


def lake_zones() -> set[str]:
    """The zones fdp's own code writes under FDP_DATA_DIR (not retyped here)."""
    from fdp import lake

    settings = Settings(data_dir=LAKE, warehouse_url="postgresql://u@h/db")
    day = dt.date(2024, 1, 2)
    return {
        zone(settings.path(RAW)),
        zone(lake.table_url(settings)),
        zone(lake.changes_url(settings, day)),
        zone(settings.path(REJECTED)),
        zone(report_dir(settings, "simulator", day)),
        zone(settings.path(*QUOTA_STATE)),
    }


def sub(value: Any) -> str:
    """The text of a ``!Sub`` (or a plain string)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        body = value["Fn::Sub"]
        return str(body if isinstance(body, str) else body[0])
    assert isinstance(value, str), value
    return value


def mwaa_options(template: Template) -> dict[str, Any]:
    props = template["Resources"]["MwaaEnvironment"]["Properties"]
    return dict(props["AirflowConfigurationOptions"])


def lake_bucket(template: Template) -> str:
    """The bucket FDP_DATA_DIR names: ``s3://${<Bucket>}``, the whole bucket."""
    data_dir = sub(mwaa_options(template)["fdp.data_dir"])
    match = re.fullmatch(r"s3://\$\{(\w+)\}", data_dir)
    assert match, data_dir
    return match.group(1)


def lifecycle(template: Template, bucket: str) -> list[dict[str, Any]]:
    props = template["Resources"][bucket]["Properties"]
    return list(props["LifecycleConfiguration"]["Rules"])


def grants(template: Template, role: str, bucket: str) -> dict[str, set[str]]:
    """Prefix of the lake -> the S3 object actions ``role`` has on it."""
    found: dict[str, set[str]] = {}
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            targets = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            for target in targets:
                if isinstance(target, dict) and "Fn::Sub" not in target:
                    continue  # !GetAtt <Bucket>.Arn: the bucket itself (ListBucket)
                text, head = sub(target), f"${{{bucket}.Arn}}/"
                if text.startswith(head):
                    prefix = text.removeprefix(head).removesuffix("*").rstrip("/")
                    found.setdefault(prefix, set()).update(actions)
    return found


READ = {"s3:GetObject"}
WRITE = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}


def zone_violations(template: Template) -> list[str]:
    """Where the stack's lake disagrees with the zones fdp writes."""
    problems = []
    bucket = lake_bucket(template)
    zones = lake_zones() | {REDSHIFT_STAGING}
    rules = lifecycle(template, bucket)
    prefixes = [r.get("Prefix", "").rstrip("/") for r in rules]
    if "" in prefixes:
        problems.append(f"{bucket}: a lifecycle rule without a prefix applies to every zone")
    if sorted(prefixes) != sorted(zones):
        problems.append(f"{bucket}: lifecycle prefixes {sorted(prefixes)} != zones {sorted(zones)}")
    for rule in rules:
        if rule.get("Transitions") and rule.get("Prefix") != f"{RAW}/":
            problems.append(f"{bucket}: {rule['Id']} archives {rule.get('Prefix')}")
    glue = template["Resources"]["SparkJob"]["Properties"]["DefaultArguments"]
    if sub(glue["--data-dir"]) != f"s3://${{{bucket}}}":
        problems.append(f"SparkJob --data-dir {sub(glue['--data-dir'])} is not the lake")
    data_dir = template["Outputs"]["DataDir"]["Value"]
    if sub(data_dir) != f"s3://${{{bucket}}}":
        problems.append(f"DataDir output {sub(data_dir)} is not the lake")
    expected = {
        # every stage runs in the workers
        "MwaaExecutionRole": dict.fromkeys(zones, WRITE),
        # the Spark job: the gate reads the batch, its report and rejected rows; the transform
        # writes curated/ and its own rejected rows
        "GlueJobRole": {RAW: READ, "reports": READ, "curated": WRITE, REJECTED: WRITE},
        # COPY reads what the loader staged
        "RedshiftRole": {REDSHIFT_STAGING: READ},
    }
    for role, wanted in expected.items():
        have = grants(template, role, bucket)
        if have != wanted:
            problems.append(f"{role}: lake grants {have} != {wanted}")
    return problems


def test_the_lake_is_one_bucket_whose_prefixes_are_fdps_zones() -> None:
    assert zone_violations(load("production.yaml")) == []
    assert lake_zones() == {"raw", "curated", "rejected", "reports", "state"}


def test_the_zone_check_catches_each_disagreement() -> None:
    good = load("production.yaml")
    bucket = lake_bucket(good)

    def broken(change: Any) -> list[str]:
        template = copy.deepcopy(good)
        change(template["Resources"])
        return zone_violations(template)

    def no_prefix(res: Any) -> None:
        del res[bucket]["Properties"]["LifecycleConfiguration"]["Rules"][0]["Prefix"]

    def no_rejected_rule(res: Any) -> None:
        rules = res[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
        rules[:] = [r for r in rules if r["Prefix"] != "rejected/"]

    def archive_curated(res: Any) -> None:
        rules = res[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
        curated = next(r for r in rules if r["Prefix"] == "curated/")
        curated["Transitions"] = [{"StorageClass": "GLACIER_IR", "TransitionInDays": 30}]

    def glue_writes_raw(res: Any) -> None:
        statements = res["GlueJobRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        raw = {"Fn::Sub": f"${{{bucket}.Arn}}/raw/*"}
        statements["Statement"].append(
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": raw}
        )

    def glue_on_another_bucket(res: Any) -> None:
        args = res["SparkJob"]["Properties"]["DefaultArguments"]
        args["--data-dir"] = {"Fn::Sub": "s3://${MwaaBucket}"}

    assert any("without a prefix" in p for p in broken(no_prefix))
    assert any("!= zones" in p for p in broken(no_rejected_rule))
    assert any("curated-zone archives" in p for p in broken(archive_curated))
    assert any(p.startswith("GlueJobRole") for p in broken(glue_writes_raw))
    assert any(p.startswith("SparkJob --data-dir") for p in broken(glue_on_another_bucket))


def test_lite_lake_has_a_rule_per_zone_and_none_bucket_wide() -> None:
    template = load("lite.yaml")
    bucket = "LakeBucket"
    prefixes = {r.get("Prefix", "").rstrip("/") for r in lifecycle(template, bucket)}
    assert "" not in prefixes
    assert lake_zones() <= prefixes
    assert sub(template["Outputs"]["DataDir"]["Value"]) == f"s3://${{{bucket}}}"


def test_mwaa_options_are_settings_and_the_glue_job_is_the_stacks() -> None:
    template = load("production.yaml")
    options = mwaa_options(template)
    names = {f"FDP_{k.removeprefix('fdp.').upper()}" for k in options if k.startswith("fdp.")}
    assert names <= setting_names()
    assert options["fdp.glue_job_name"] == {"Ref": "SparkJob"}
    assert options["fdp.warehouse_secret_arn"] == {"Ref": "WarehouseSecret"}
    assert options["fdp.warehouse_workgroup"] == {"Ref": "WarehouseWorkgroup"}
    assert options["fdp.aws_region"] == {"Ref": "AWS::Region"}
    # engine spark in the workers needs pyspark in the bundle; the stack runs Spark on Glue
    assert options.get("fdp.engine", "polars") == "polars" or "spark" in WHEEL_EXTRAS
    # the job's name is per environment, so the stack must export it (no default can match)
    job = template["Resources"]["SparkJob"]["Properties"]
    assert sub(job["Name"]) == "fdp-${Environment}-transform"


def test_the_glue_job_arguments_are_the_spark_jobs() -> None:
    """The stack's --data-dir and the per-run --date and --source (fdp.orchestration.glue)
    parse as fdp.engines.spark_job's arguments; Glue's own are ignored."""
    job = load("production.yaml")["Resources"]["SparkJob"]["Properties"]
    ours = {k: v for k, v in job["DefaultArguments"].items() if k == "--data-dir"}
    argv = [*[a for k in ours for a in (k, "s3://lake")], "--date", "2024-01-02"]
    argv += ["--source", "alpha_vantage", "--enable-metrics", "true"]
    args = parse_args(argv)
    assert (args.data_dir, args.source) == ("s3://lake", "alpha_vantage")


def test_the_stacks_warehouse_secret_resolves_to_its_workgroup_and_database() -> None:
    """The secret the stack generates (its template, plus the password AWS adds), read with
    the settings MWAA exports, names the namespace's database on the stack's workgroup."""
    res = load("production.yaml")["Resources"]
    generated = res["WarehouseSecret"]["Properties"]["GenerateSecretString"]
    secret = json.loads(generated["SecretStringTemplate"]) | {
        generated["GenerateStringKey"]: "x" * 32
    }
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fdp/dev/warehouse-AbCdEf"
    settings = Settings(
        data_dir="s3://lake", warehouse_secret_arn=arn, warehouse_workgroup="fdp-dev"
    )
    target = Target.parse(from_secret(settings, arn, json.dumps(secret)))
    assert target.database == res["WarehouseNamespace"]["Properties"]["DbName"]
    assert target.serverless
    assert (target.name, target.secret_arn) == ("fdp-dev", arn)
    assert target.staging == f"s3://lake/{REDSHIFT_STAGING}"


@pytest.mark.parametrize("name", ["production.yaml", "lite.yaml"])
def test_each_lake_rule_names_its_zone(name: str) -> None:
    for rule in lifecycle(load(name), "LakeBucket"):
        assert rule["Id"].startswith(rule["Prefix"].rstrip("/")), rule["Id"]


def startup_env(options: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The FDP_* variables the bundle's startup.sh exports for MWAA's custom options."""
    script = tmp_path / "startup.sh"
    script.write_text(STARTUP_SH)
    airflow = {f"AIRFLOW__FDP__{k.removeprefix('fdp.').upper()}": v for k, v in options.items()}
    done = subprocess.run(
        ["sh", "-c", f". {script} && env"],
        env={"PATH": os.environ["PATH"], **airflow},
        capture_output=True,
        text=True,
        check=True,
    )
    pairs = (line.partition("=") for line in done.stdout.splitlines())
    return {name: value for name, _, value in pairs if name.startswith("FDP_")}


def test_startup_sh_turns_the_stacks_options_into_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fdp/dev/warehouse-AbCdEf"
    values = {
        "fdp.data_dir": "s3://fdp-dev-lake-123456789012-eu-west-1",
        "fdp.aws_region": "eu-west-1",
        "fdp.alphavantage_secret_name": "fdp/dev/alphavantage-api-key",
        "fdp.warehouse_secret_arn": arn,
        "fdp.warehouse_workgroup": "fdp-dev",
        "fdp.glue_job_name": "fdp-dev-transform",
    }
    options = {k for k in mwaa_options(load("production.yaml")) if k.startswith("fdp.")}
    assert options == set(values)
    exported = startup_env(values, tmp_path)
    for name in [n for n in os.environ if n.startswith("FDP_")]:
        monkeypatch.delenv(name)
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert {f"fdp.{k}": getattr(settings, k) for k in (o[4:] for o in values)} == values
    assert settings.is_remote
    assert settings.warehouse_url == ""  # the deployment's: read from the secret when loading
    monkeypatch.setenv("FDP_WAREHOUSE_SECRET", arn)  # an option misspelt in the stack
    with pytest.raises(ValueError, match="did you mean FDP_WAREHOUSE_SECRET_ARN"):
        Settings()
