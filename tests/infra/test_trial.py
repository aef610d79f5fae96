"""Issue 24.6: the README's deploy section leads with a trial that can be undone, and says exactly what `destroy`
leaves behind. The trial is synthesized from the command the README prints (its `-c` flags), so the text and the
template cannot drift apart; cfn-lint and checkov scan it (it is the one shape with a trail of its own)."""

from __future__ import annotations

import shlex

import pytest

from infra.assets import REPO_ROOT
from tests.infra.template import Synthesized, assert_lint_and_checkov_clean, audit_bucket, synthesize

pytestmark = pytest.mark.infra

README = REPO_ROOT / "README.md"


def _deploy_section() -> str:
    text = README.read_text()
    start = text.index("## Deploy and destroy")
    return text[start : text.index("\n## ", start + 1)]


def _trial_context() -> dict[str, str]:
    """The `-c key=value` flags of the README's trial deploy command."""
    (command,) = [line for line in _deploy_section().splitlines() if line.startswith("npx aws-cdk@2 deploy")]
    words = shlex.split(command)
    assert "--all" in words  # organization mode has two stacks; the trial command works for both
    return dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-c")


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("trial"), **_trial_context())


def test_the_deploy_section_leads_with_the_trial() -> None:
    section = _deploy_section()
    assert section.index("trial") < section.index("make deploy")
    assert _trial_context() == {
        "stage": "trial",
        "retention_years": "1",
        "access_log_retention_days": "30",
        "create_management_trail": "true",
    }
    (destroy,) = [line for line in section.splitlines() if line.startswith("npx aws-cdk@2 destroy")]
    assert shlex.split(destroy)[-3:] == ["--all", "-c", "stage=trial"]  # the same stack: FlopsMeter-trial


def test_the_trial_is_a_disposable_stage_locked_for_one_year_with_a_trail(trial: Synthesized) -> None:
    assert trial.stack_name == "FlopsMeter-trial"
    _, bucket = audit_bucket(trial)
    assert bucket["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Mode": "COMPLIANCE",
        "Years": 1,
    }
    ((_, trail),) = trial.of_type("AWS::CloudTrail::Trail").items()
    assert trail["Properties"]["IsLogging"] is True


def _retained(trial: Synthesized) -> dict[str, str]:
    return {k: v["Type"] for k, v in trial.resources.items() if v.get("DeletionPolicy") == "Retain"}


def test_destroy_leaves_exactly_what_the_readme_lists(trial: Synthesized) -> None:
    """The audit bucket, its access-log bucket, the audit key and the signing key; nothing else."""
    bucket_id, bucket = audit_bucket(trial)
    logs_id = bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    audit_key = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    signing_keys = [k for k, v in trial.of_type("AWS::KMS::Key").items() if v["Properties"].get("KeySpec")]
    assert _retained(trial) == {
        bucket_id: "AWS::S3::Bucket",
        logs_id: "AWS::S3::Bucket",
        audit_key: "AWS::KMS::Key",
        **dict.fromkeys(signing_keys, "AWS::KMS::Key"),
    }
    left_behind = _deploy_section().split("What `destroy` leaves behind", 1)[1].split("Everything else goes", 1)[0]
    for named in ("the audit bucket", "the audit key", "the digest signing key", "the access-log bucket"):
        assert f"**{named}**" in left_behind


def test_every_bucket_destroy_deletes_is_emptied_first(trial: Synthesized) -> None:
    """CloudFormation cannot delete a bucket that holds objects: the stack deletion would stop there."""
    emptied = {
        r["Properties"]["BucketName"]["Ref"]
        for r in trial.resources.values()
        if r["Type"] == "Custom::S3AutoDeleteObjects"
    }
    deleted = {k for k in trial.of_type("AWS::S3::Bucket") if k not in _retained(trial)}
    assert deleted and deleted == emptied


def test_the_trial_template_passes_cfn_lint_and_checkov(trial: Synthesized) -> None:
    assert_lint_and_checkov_clean(sorted(trial.outdir.glob("*.template.json")))
