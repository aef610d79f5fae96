"""Synthesis and lookups for the infra tests: the template is asserted by properties, never by hashed logical ids.

``synthesize`` goes through the same ``build_app`` as app.py (cdk-nag on); a full synth takes ~10 s, so the
configured stack below is synthesized once per session (``conftest.synth``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra.policy import resolve

NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}

# The configured stack every construct test reads (values differ from cdk.json, so a test sees them flow through).
RETENTION_YEARS = 7
MAX_CONCURRENCY = 3
RESERVED = 4  # the optional reservation, taken here (cdk.json reserves nothing: tests/infra/test_stages.py)
EMAIL = "compliance@example.com"
BREAK_GLASS = "ops/BreakGlass"  # a role with a path
LEGAL_HOLD = "LegalHold"
CONFIGURED = {
    "retention_years": RETENTION_YEARS,
    "classifier_max_concurrency": MAX_CONCURRENCY,
    "classifier_reserved_concurrency": str(RESERVED),  # as `cdk synth -c key=value` passes it
    "alert_email": EMAIL,
    "break_glass_role_name": BREAK_GLASS,
    "legal_hold_role_name": LEGAL_HOLD,
}
HANDLERS = {
    "classifier": "lambdas.classifier.handler.lambda_handler",
    "reconciler": "lambdas.reconciler.handler.lambda_handler",
    "digest": "lambdas.digest.handler.lambda_handler",
    "provenance": "lambdas.provenance.handler.lambda_handler",
    "compaction": "lambdas.compaction.handler.lambda_handler",
    "hyperpod": "lambdas.hyperpod.handler.lambda_handler",
}


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    outdir: Path
    asset_dir: Path
    stack_name: str

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def one(self, cfn_type: str, logical_prefix: str = "") -> tuple[str, dict[str, Any]]:
        found = [(k, v) for k, v in self.of_type(cfn_type).items() if k.startswith(logical_prefix)]
        assert len(found) == 1, f"expected one {cfn_type} starting {logical_prefix!r}, found {[k for k, _ in found]}"
        return found[0]


def assert_lint_and_checkov_clean(templates: list[Path]) -> None:
    """cfn-lint, then checkov (``make checkov`` installs it into .build/checkov; skipped without it) on
    ``templates``: both must report nothing."""
    import subprocess
    import sys

    import pytest

    from infra.assets import REPO_ROOT

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    lint = run(str(Path(sys.executable).parent / "cfn-lint"), *map(str, templates))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    checkov = REPO_ROOT / ".build" / "checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.skip("checkov is not installed (make checkov installs it into .build/checkov)")
    files = [arg for t in templates for arg in ("-f", str(t))]
    scan = run(str(checkov), *files, "--framework", "cloudformation", "--skip-download", "--compact", "--quiet")
    assert scan.returncode == 0, scan.stdout[-4000:]


def synthesize(tmp: Path, **overrides: Any) -> Synthesized:
    """cdk.json context + ``overrides``, through the same ``build_app`` as app.py (cdk-nag on), synthesized."""
    from infra.config import cdk_json_context
    from infra.synth import build_app

    outdir, asset_dir = tmp / "cdk.out", tmp / "asset"
    app, stack = build_app({**cdk_json_context(), **NO_BUNDLING, **overrides}, outdir=str(outdir), asset_dir=asset_dir)
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    template = assembly.get_stack_by_name(stack.stack_name).template
    return Synthesized(json.loads(json.dumps(template)), outdir, asset_dir, stack.stack_name)


# ---- lookups by property -----------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function(synth: Synthesized, name: str) -> tuple[str, dict[str, Any]]:
    found = [
        (k, v)
        for k, v in synth.of_type("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == HANDLERS[name]
    ]
    assert len(found) == 1, f"one {name} function expected"
    return found[0]


def glue_table(synth: Synthesized, name: str = "records") -> dict[str, Any]:
    """The ``AWS::Glue::Table`` resource whose table is called ``name``."""
    (table,) = [t for t in synth.of_type("AWS::Glue::Table").values() if t["Properties"]["TableInput"]["Name"] == name]
    return table


def role_of(synth: Synthesized, name: str) -> str:
    _, fn = function(synth, name)
    return str(fn["Properties"]["Role"]["Fn::GetAtt"][0])


def role_arn(synth: Synthesized, name: str) -> str:
    return f"<{role_of(synth, name)}.Arn>"


def event_source(synth: Synthesized, name: str) -> dict[str, Any]:
    """Function ``name``'s one event source mapping."""
    function_id, _ = function(synth, name)
    (mapping,) = [
        m for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    ]  # fmt: skip
    return mapping


def consumed_queue(synth: Synthesized, name: str) -> dict[str, Any]:
    """The queue function ``name`` consumes (found through its event source)."""
    mapping = event_source(synth, name)
    properties: dict[str, Any] = synth.resources[mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]
    return properties


def classifier_queue(synth: Synthesized) -> dict[str, Any]:
    """The queue the classifier consumes (found through its event source)."""
    return consumed_queue(synth, "classifier")


def dead_letter_queue_id(synth: Synthesized) -> str:
    """The classifier queue's redrive target."""
    return str(classifier_queue(synth)["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0])


def resource_policy(synth: Synthesized, cfn_type: str, target_key: str, target_id: str) -> dict[str, Any]:
    """The policy document of the ``cfn_type`` policy resource (``AWS::SNS::TopicPolicy``, ``AWS::SQS::QueuePolicy``)
    that names ``{"Ref": target_id}`` in its ``target_key`` list (``Topics``, ``Queues``)."""
    (document,) = [
        p["Properties"]["PolicyDocument"]
        for p in synth.of_type(cfn_type).values()
        if {"Ref": target_id} in p["Properties"][target_key]
    ]
    found: dict[str, Any] = document
    return found


def key_policy(synth: Synthesized, key_id: str) -> dict[str, Any]:
    document: dict[str, Any] = synth.resources[key_id]["Properties"]["KeyPolicy"]
    return document


def audit_bucket(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    found = [(k, v) for k, v in synth.of_type("AWS::S3::Bucket").items() if v["Properties"].get("ObjectLockEnabled")]
    assert len(found) == 1, "exactly one object-locked bucket"
    return found[0]


def bucket_policy(synth: Synthesized, bucket_id: str) -> dict[str, Any]:
    for policy in synth.of_type("AWS::S3::BucketPolicy").values():
        if policy["Properties"]["Bucket"] == {"Ref": bucket_id}:
            document: dict[str, Any] = policy["Properties"]["PolicyDocument"]
            return document
    raise AssertionError(f"no bucket policy for {bucket_id}")


def role_statements(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for cfn_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in synth.of_type(cfn_type).values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += resolve(policy["Properties"]["PolicyDocument"])["Statement"]
    assert not synth.resources[role_id]["Properties"].get("ManagedPolicyArns"), "no managed policies on roles"
    return statements


def allowed(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, resource) pairs a role is allowed."""
    pairs = set()
    for s in statements:
        assert s["Effect"] == "Allow"
        for action in as_list(s["Action"]):
            for resource in as_list(s["Resource"]):
                pairs.add((action, resource))
    return pairs
