"""Each function's role: exactly the actions and resources it needs (statement by statement)."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from flopsmeter.contract import RECORDED_EVENT_DETAIL_TYPE, RECORDED_EVENT_SOURCE, SIGNING_ALGORITHM, SIGNING_KEY_SPEC
from infra.constructs.audit_bucket import INDEX_ROOT, NOTIFICATIONS_ROOT
from infra.constructs.compaction import COMPACTED_ROOT
from infra.constructs.hyperpod import CLUSTERS_ROOT, HYPERPOD_RECORDS
from infra.constructs.provenance import PROVENANCE_ROOT
from tests.infra.policy import resolve
from tests.infra.template import (
    HANDLERS,
    Synthesized,
    allowed,
    as_list,
    audit_bucket,
    dead_letter_queue_id,
    role_of,
    role_statements,
)

pytestmark = pytest.mark.infra


def test_each_function_has_its_own_role(synth: Synthesized) -> None:
    roles = {role_of(synth, name) for name in HANDLERS}
    assert len(roles) == len(HANDLERS)


def test_classifier_role_has_exactly_the_actions_it_needs(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    actions = {a for a, _ in allowed(role_statements(synth, role_of(synth, "classifier")))}
    assert actions == {
        "s3:PutObject",
        "s3:PutObjectRetention",
        "s3:GetObject",
        "s3:GetObjectRetention",
        "s3:ListBucket",
        "kms:GenerateDataKey",
        "kms:GenerateDataKey*",
        "kms:Decrypt",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:ListTags",
        "sagemaker:ListPipelineExecutionSteps",  # confirms a pipeline tag (service.launcher)
        "bedrock:GetModelCustomizationJob",
        "bedrock:ListTagsForResource",
        "sagemaker:DescribeTrainingSession",  # issue 26: training sessions
        "sagemaker:ListTrainingSessions",
        "sagemaker:ListModelPackages",  # a session's checkpoints in its group (lineage)
        "batch:DescribeServiceJob",  # issue 26: AWS Batch service jobs
        "cloudwatch:GetMetricData",
        "cloudwatch:GetMetricStatistics",
        "cloudtrail:LookupEvents",
        "events:PutEvents",
        "sns:Publish",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    writes = {r for a, r in allowed(role_statements(synth, role_of(synth, "classifier"))) if a == "s3:PutObject"}
    assert writes == {
        f"<{bucket_id}.Arn>/records/*",
        f"<{bucket_id}.Arn>/{NOTIFICATIONS_ROOT}*",
        f"<{bucket_id}.Arn>/{INDEX_ROOT}*",
    }


def test_classifier_may_put_only_its_own_events_on_the_default_bus(synth: Synthesized) -> None:
    statements = role_statements(synth, role_of(synth, "classifier"))
    (put,) = [s for s in statements if s["Action"] == "events:PutEvents"]
    assert put["Resource"].endswith(":event-bus/default")
    assert put["Condition"] == {
        "StringEquals": {"events:source": RECORDED_EVENT_SOURCE, "events:detail-type": RECORDED_EVENT_DETAIL_TYPE}
    }


def test_classifier_may_send_only_to_its_dead_letter_queue_with_its_key(synth: Synthesized) -> None:
    dlq_id = dead_letter_queue_id(synth)
    pairs = allowed(role_statements(synth, role_of(synth, "classifier")))
    assert {r for a, r in pairs if a == "sqs:SendMessage"} == {f"<{dlq_id}.Arn>"}
    key_id = synth.resources[dlq_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert (action, f"<{key_id}.Arn>") in pairs
    for other in ("reconciler", "digest"):
        assert not any(a == "sqs:SendMessage" for a, _ in allowed(role_statements(synth, role_of(synth, other))))


def test_reconciler_role_is_the_classifier_set_plus_listing_jobs_minus_the_queue(synth: Synthesized) -> None:
    classifier = {a for a, _ in allowed(role_statements(synth, role_of(synth, "classifier")))}
    reconciler = {a for a, _ in allowed(role_statements(synth, role_of(synth, "reconciler")))}
    assert reconciler - classifier == {
        "sagemaker:ListTrainingJobs",
        "bedrock:ListModelCustomizationJobs",
        "batch:DescribeJobQueues",  # issue 26: the AWS Batch pass (SAGEMAKER_TRAINING queues, their ended jobs)
        "batch:ListServiceJobs",
    }
    assert classifier - reconciler == {a for a in classifier if a.startswith("sqs:")}


def test_digest_role_reads_everything_writes_only_digests_and_signs_with_pss(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    statements = role_statements(synth, role_of(synth, "digest"))
    pairs = allowed(statements)
    assert {r for a, r in pairs if a in ("s3:PutObject", "s3:PutObjectRetention")} == {f"<{bucket_id}.Arn>/digests/*"}
    assert {a for a, _ in pairs if a.startswith("kms:")} == {
        "kms:Sign",
        "kms:GetPublicKey",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    (sign,) = [s for s in statements if s["Action"] == "kms:Sign"]
    assert sign["Condition"] == {"StringEquals": {"kms:SigningAlgorithm": SIGNING_ALGORITHM}}
    assert SIGNING_ALGORITHM == "RSASSA_PSS_SHA_256"
    key = synth.resources[sign["Resource"][1:-5]]["Properties"]  # "<Id.Arn>" -> Id
    assert (key["KeySpec"], key["KeyUsage"]) == (SIGNING_KEY_SPEC, "SIGN_VERIFY")


def test_no_iam_policy_grants_delete_or_wildcard_writes_on_the_audit_bucket(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    allowed_write_prefixes = (
        "records/*",
        NOTIFICATIONS_ROOT + "*",
        INDEX_ROOT + "*",
        "digests/*",
        PROVENANCE_ROOT + "*",
        COMPACTED_ROOT + "*",
        HYPERPOD_RECORDS + "*",  # the HyperPod function: its own records only (tests/infra/test_hyperpod.py)
        CLUSTERS_ROOT + "*",
    )
    documents = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::IAM::Policy").values()]
    documents += [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::IAM::ManagedPolicy").values()]
    for document in documents:
        for statement in resolve(document)["Statement"]:
            resources = as_list(statement["Resource"])
            for action in as_list(statement["Action"]):
                assert not fnmatchcase(action, "s3:Delete*") and action not in ("s3:*", "*"), action
                assert "Delete" not in action or not action.startswith("s3:"), action
                if action.startswith("s3:Put") or action.startswith("s3:Abort"):
                    for resource in resources:
                        if resource.startswith(f"<{bucket_id}.Arn>"):
                            suffix = resource.removeprefix(f"<{bucket_id}.Arn>/")
                            assert suffix in allowed_write_prefixes, f"{action} on {resource}"


def test_customization_job_facts_are_scoped_to_this_accounts_customization_jobs(synth: Synthesized) -> None:
    for name in ("classifier", "reconciler"):
        pairs = allowed(role_statements(synth, role_of(synth, name)))
        resources = {r for a, r in pairs if a in ("bedrock:GetModelCustomizationJob", "bedrock:ListTagsForResource")}
        assert resources == {"arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:model-customization-job/*"}
