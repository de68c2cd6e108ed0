"""Both CloudFormation stacks pass cfn-lint and keep their security properties: no public
bucket, everything encrypted, no wildcard grants, nothing reachable from the internet."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from infra_tools import TEMPLATES, run, tool

PRODUCTION = TEMPLATES / "production.yaml"
LITE = TEMPLATES / "lite.yaml"
BOTH = pytest.mark.parametrize("path", [PRODUCTION, LITE], ids=["production", "lite"])

Template = dict[str, Any]

# resource type -> (property path, predicate) that makes it encrypted at rest
ENCRYPTION: dict[str, list[tuple[str, Any]]] = {
    "AWS::SNS::Topic": [("KmsMasterKeyId", bool)],
    "AWS::SecretsManager::Secret": [("KmsKeyId", bool)],
    "AWS::Logs::LogGroup": [("KmsKeyId", bool)],
    "AWS::RedshiftServerless::Namespace": [("KmsKeyId", bool)],
    "AWS::MWAA::Environment": [("KmsKey", bool)],
    "AWS::Glue::Job": [("SecurityConfiguration", bool)],
    "AWS::KMS::Key": [("EnableKeyRotation", lambda v: v is True)],
}


def load(path: Path) -> Template:
    template, errors = decode(str(path))
    assert not errors, errors
    return dict(template)


def resources(template: Template, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, res in template["Resources"].items():
        if res["Type"] == kind:
            yield name, res.get("Properties", {})


def statements(node: Any, owner: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM-style policy statement in the template, with the resource that holds it."""
    if isinstance(node, dict):
        if "Statement" in node:
            for st in node["Statement"]:
                yield owner, st
        for key, value in node.items():
            yield from statements(value, owner or key)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item, owner)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def bucket_violations(template: Template) -> list[str]:
    problems = []
    policies = {
        p["Bucket"]["Ref"]: p["PolicyDocument"]
        for _, p in resources(template, "AWS::S3::BucketPolicy")
    }
    for name, props in resources(template, "AWS::S3::Bucket"):
        block = props.get("PublicAccessBlockConfiguration", {})
        for flag in (
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ):
            if block.get(flag) is not True:
                problems.append(f"{name}: {flag} is not true")
        rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        algorithms = [r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
        if not algorithms or not all(
            a in ("aws:kms", "aws:kms:dsse", "AES256") for a in algorithms
        ):
            problems.append(f"{name}: no default encryption")
        if props.get("VersioningConfiguration", {}).get("Status") != "Enabled":
            problems.append(f"{name}: versioning is off")
        lifecycle = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if not any(r.get("Status") == "Enabled" for r in lifecycle):
            problems.append(f"{name}: no lifecycle rule")
        if "AccessControl" in props:
            problems.append(f"{name}: sets a canned ACL")
        denies_http = any(
            st.get("Effect") == "Deny"
            and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for st in policies.get(name, {}).get("Statement", [])
        )
        if not denies_http:
            problems.append(f"{name}: bucket policy does not deny plain HTTP")
    return problems


def policy_violations(template: Template) -> list[str]:
    problems = []
    key_policies = {name for name, _ in resources(template, "AWS::KMS::Key")}
    for owner, st in statements(template["Resources"]):
        if st.get("Effect") != "Allow":
            continue
        actions = [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]
        if "*" in actions or "NotAction" in st:
            problems.append(f"{owner}: allows every action")
        if "*" in as_list(st.get("Principal", {})) or st.get("Principal", {}).get("AWS") == "*":
            problems.append(f"{owner}: allows anyone")
        on_everything = "*" in as_list(st.get("Resource", []))
        wildcard = [a for a in actions if a.endswith(":*")]
        # a key policy's Resource "*" means the key itself
        if on_everything and wildcard and owner not in key_policies:
            problems.append(f"{owner}: allows {wildcard} on every resource")
    return problems


def encryption_violations(template: Template) -> list[str]:
    problems = []
    for kind, checks in ENCRYPTION.items():
        for name, props in resources(template, kind):
            for prop, ok in checks:
                if not ok(props.get(prop)):
                    problems.append(f"{name}: {prop} not set")
    for name, props in resources(template, "AWS::EC2::LaunchTemplate"):
        for mapping in props["LaunchTemplateData"].get("BlockDeviceMappings", []):
            if mapping.get("Ebs", {}).get("Encrypted") is not True:
                problems.append(f"{name}: unencrypted volume {mapping.get('DeviceName')}")
    for name, props in resources(template, "AWS::EC2::Instance"):
        if "BlockDeviceMappings" in props or "Volumes" in props:
            problems.append(f"{name}: volumes outside the checked launch template")
    return problems


def exposure_violations(template: Template) -> list[str]:
    problems = []
    rules = [
        (n, r)
        for n, p in resources(template, "AWS::EC2::SecurityGroup")
        for r in p.get("SecurityGroupIngress", [])
    ]
    rules += list(resources(template, "AWS::EC2::SecurityGroupIngress"))
    for name, rule in rules:
        if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
            problems.append(f"{name}: ingress open to the internet")
    for name, props in resources(template, "AWS::RedshiftServerless::Workgroup"):
        if props.get("PubliclyAccessible") is not False:
            problems.append(f"{name}: publicly accessible")
    for name, props in resources(template, "AWS::MWAA::Environment"):
        if props.get("WebserverAccessMode") != "PRIVATE_ONLY":
            problems.append(f"{name}: public web server")
    for name, props in resources(template, "AWS::EC2::LaunchTemplate"):
        if props["LaunchTemplateData"].get("MetadataOptions", {}).get("HttpTokens") != "required":
            problems.append(f"{name}: IMDSv1 allowed")
    return problems


CHECKS = [bucket_violations, policy_violations, encryption_violations, exposure_violations]


def test_cfn_lint_passes_both_templates_with_nothing_ignored() -> None:
    result = run(tool("cfn-lint"), "--format", "parseable", PRODUCTION, LITE)
    # exit status is a bitmask: 2 errors, 4 warnings, 8 informational
    assert result.returncode == 0, result.stdout + result.stderr


@BOTH
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_security_property_holds(path: Path, check: Any) -> None:
    assert check(load(path)) == []


def test_each_check_catches_its_violation() -> None:
    """The checks above can fail: break one property per check and each one notices."""
    good = load(PRODUCTION)
    broken = copy.deepcopy(good)
    res = broken["Resources"]
    res["LakeBucket"]["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] = False
    res["GlueJobRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "*", "Resource": "*"}
    )
    del res["AlertsTopic"]["Properties"]["KmsMasterKeyId"]
    res["WarehouseWorkgroup"]["Properties"]["PubliclyAccessible"] = True
    assert bucket_violations(broken) == ["LakeBucket: BlockPublicPolicy is not true"]
    assert policy_violations(broken) == ["GlueJobRole: allows every action"]
    assert encryption_violations(broken) == ["AlertsTopic: KmsMasterKeyId not set"]
    assert exposure_violations(broken) == ["WarehouseWorkgroup: publicly accessible"]


def test_production_network_spans_two_azs_with_working_routes() -> None:
    res = load(PRODUCTION)["Resources"]
    azs = {
        res[s]["Properties"]["AvailabilityZone"]["Fn::Select"][0]
        for s in ("PrivateSubnet1", "PrivateSubnet2")
    }
    assert azs == {0, 1}
    routes = {
        r["Properties"]["RouteTableId"]["Ref"]: r["Properties"]
        for r in res.values()
        if r["Type"] == "AWS::EC2::Route"
    }
    assert routes["PublicRouteTable"]["GatewayId"] == {"Ref": "InternetGateway"}
    assert routes["PrivateRouteTable1"]["NatGatewayId"] == {"Ref": "NatGateway1"}
    assert "NatGatewayId" in routes["PrivateRouteTable2"]
    associations = {
        r["Properties"]["SubnetId"]["Ref"]: r["Properties"]["RouteTableId"]["Ref"]
        for r in res.values()
        if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
    }
    assert associations["PrivateSubnet1"] == "PrivateRouteTable1"
    assert associations["PrivateSubnet2"] == "PrivateRouteTable2"
    mwaa = res["MwaaEnvironment"]["Properties"]
    assert mwaa["NetworkConfiguration"]["SubnetIds"] == [
        {"Ref": "PrivateSubnet1"},
        {"Ref": "PrivateSubnet2"},
    ]


def test_production_runs_the_pipeline_versions() -> None:
    template = load(PRODUCTION)
    res = template["Resources"]
    mwaa = res["MwaaEnvironment"]["Properties"]
    assert mwaa["AirflowVersion"].startswith("2.10.")
    assert (mwaa["RequirementsS3Path"], mwaa["StartupScriptS3Path"], mwaa["PluginsS3Path"]) == (
        "requirements.txt",
        "startup.sh",
        "plugins.zip",
    )
    assert mwaa["DagS3Path"] == "dags"
    glue = res["SparkJob"]["Properties"]
    assert glue["GlueVersion"] == "5.0"
    assert glue["Command"]["Name"] == "glueetl"
    assert template["Parameters"]["GlueScriptKey"]["Default"] == "glue/spark_job.py"
