"""The synthesized stack, asserted by properties (never by hashed logical ids). One synth for the module."""

from __future__ import annotations

import json
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from flopsmeter.audit.keys import record_key
from flopsmeter.contract import LAMBDA_ENV, RECORDED_EVENT_DETAIL_TYPE, RECORDED_EVENT_SOURCE
from infra.glue_schema import record_columns
from infra.stack import NOTIFICATIONS_ROOT
from tests.infra.conftest import Synthesized, synthesize
from tests.infra.policy import Request, denying_statements, resolve

pytestmark = pytest.mark.infra

RETENTION_YEARS = 7
LAYER_VERSION = 31
RESERVED = 3
EMAIL = "compliance@example.com"
HANDLERS = {
    "classifier": "lambdas.classifier.handler.lambda_handler",
    "reconciler": "lambdas.reconciler.handler.lambda_handler",
    "digest": "lambdas.digest.handler.lambda_handler",
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("stack"),
        retention_years=RETENTION_YEARS,
        powertools_layer_version=LAYER_VERSION,
        classifier_reserved_concurrency=str(RESERVED),  # as `cdk synth -c key=value` passes it
        alert_email=EMAIL,
    )


# ---- lookups by property -----------------------------------------------------------------------------------


def function(synth: Synthesized, name: str) -> tuple[str, dict[str, Any]]:
    found = [
        (k, v)
        for k, v in synth.of_type("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == HANDLERS[name]
    ]
    assert len(found) == 1, f"one {name} function expected"
    return found[0]


def role_of(synth: Synthesized, name: str) -> str:
    _, fn = function(synth, name)
    return str(fn["Properties"]["Role"]["Fn::GetAtt"][0])


def role_arn(synth: Synthesized, name: str) -> str:
    return f"<{role_of(synth, name)}.Arn>"


def dead_letter_queue_id(synth: Synthesized) -> str:
    """The classifier queue's redrive target (the queue the classifier consumes, found through its event source)."""
    (mapping,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    queue = synth.resources[mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
    return str(queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0])


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
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += resolve(policy["Properties"]["PolicyDocument"])["Statement"]
    for policy in synth.of_type("AWS::IAM::ManagedPolicy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += resolve(policy["Properties"]["PolicyDocument"])["Statement"]
    assert not synth.resources[role_id]["Properties"].get("ManagedPolicyArns"), "no managed policies on roles"
    return statements


def allowed(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, resource) pairs a role is allowed."""
    pairs = set()
    for s in statements:
        assert s["Effect"] == "Allow"
        for action in s["Action"] if isinstance(s["Action"], list) else [s["Action"]]:
            for resource in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
                pairs.add((action, resource))
    return pairs


# ---- audit bucket --------------------------------------------------------------------------------------------


def test_audit_bucket_locks_every_object_in_compliance_mode_for_the_configured_years(synth: Synthesized) -> None:
    _, bucket = audit_bucket(synth)
    lock = bucket["Properties"]["ObjectLockConfiguration"]
    assert lock == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": RETENTION_YEARS}},
    }
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_audit_bucket_is_kms_encrypted_private_logged_and_retained(synth: Synthesized) -> None:
    bucket_id, bucket = audit_bucket(synth)
    props = bucket["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    key = synth.resources[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    log_target = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert log_target != bucket_id and synth.resources[log_target]["Type"] == "AWS::S3::Bucket"
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"


def test_audit_key_cannot_be_scheduled_for_deletion_or_disabled(synth: Synthesized) -> None:
    _, bucket = audit_bucket(synth)
    key_id = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    document = synth.resources[key_id]["Properties"]["KeyPolicy"]
    for action in ("kms:ScheduleKeyDeletion", "kms:DisableKey"):
        assert denying_statements(document, Request("arn:aws:iam::111122223333:root", action, "*"))


def test_audit_bucket_policy_requires_tls(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    document = bucket_policy(synth, bucket_id)
    reader = "arn:aws:iam::111122223333:role/Auditor"
    key = f"<{bucket_id}.Arn>/records/v1/x.json"
    assert denying_statements(document, Request(reader, "s3:GetObject", key, {"aws:SecureTransport": "false"}))
    assert not denying_statements(document, Request(reader, "s3:GetObject", key, {"aws:SecureTransport": "true"}))


@pytest.mark.parametrize("action", ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"])
@pytest.mark.parametrize("who", ["classifier", "reconciler", "digest", "admin"])
def test_nobody_may_delete_or_unlock_audit_objects(synth: Synthesized, action: str, who: str) -> None:
    bucket_id, _ = audit_bucket(synth)
    principal = "arn:aws:iam::111122223333:role/Admin" if who == "admin" else role_arn(synth, who)
    for key in ("records/v1/account=1/region=r/date=2026-01-01/job.json", "digests/v1/x.json", "other"):
        request = Request(principal, action, f"<{bucket_id}.Arn>/{key}", {"aws:SecureTransport": "true"})
        assert denying_statements(bucket_policy(synth, bucket_id), request), f"{who} may {action} {key}"


def _write(
    principal: str,
    action: str,
    resource: str,
    *,
    mode: str = "COMPLIANCE",
    days: int = 366 * RETENTION_YEARS,
    conditional: bool = True,
) -> Request:
    context = {
        "aws:SecureTransport": "true",
        "s3:object-lock-mode": mode,
        "s3:object-lock-remaining-retention-days": str(days),
        "s3:ObjectCreationOperation": "true",
    }
    if conditional:
        context["s3:if-none-match"] = "*"
    return Request(principal, action, resource, context)


@pytest.mark.parametrize(
    ("who", "prefix"),
    [
        ("classifier", "records/"),
        ("reconciler", "records/"),
        ("classifier", NOTIFICATIONS_ROOT),
        ("digest", "digests/"),
    ],
)
def test_writers_may_put_locked_objects_under_their_own_prefix(synth: Synthesized, who: str, prefix: str) -> None:
    bucket_id, _ = audit_bucket(synth)
    resource = f"<{bucket_id}.Arn>/{prefix}v1/some-key.json"
    for action in ("s3:PutObject", "s3:PutObjectRetention"):  # PutObject with lock headers authorises both
        denied = denying_statements(bucket_policy(synth, bucket_id), _write(role_arn(synth, who), action, resource))
        assert denied == [], f"{who} {action} under {prefix} denied by {denied}"


@pytest.mark.parametrize(
    ("who", "prefix"),
    [
        ("classifier", "digests/"),
        ("reconciler", "digests/"),
        ("digest", "records/"),
        ("digest", NOTIFICATIONS_ROOT),
        ("classifier", "elsewhere/"),
    ],
)
def test_writers_may_not_set_retention_outside_their_prefix(synth: Synthesized, who: str, prefix: str) -> None:
    bucket_id, _ = audit_bucket(synth)
    request = _write(role_arn(synth, who), "s3:PutObjectRetention", f"<{bucket_id}.Arn>/{prefix}v1/k.json")
    assert denying_statements(bucket_policy(synth, bucket_id), request)


def test_no_one_else_may_set_retention_anywhere(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    for principal in ("arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:role/Admin"):
        for prefix in ("records/", "digests/", NOTIFICATIONS_ROOT):
            request = _write(principal, "s3:PutObjectRetention", f"<{bucket_id}.Arn>/{prefix}v1/k.json")
            assert "DenyRetentionExceptWriters" in denying_statements(bucket_policy(synth, bucket_id), request)


def test_writes_must_be_conditional_compliance_and_long_enough(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    document = bucket_policy(synth, bucket_id)
    classifier = role_arn(synth, "classifier")
    resource = f"<{bucket_id}.Arn>/records/v1/job.json"
    assert denying_statements(document, _write(classifier, "s3:PutObject", resource, conditional=False))
    assert denying_statements(document, _write(classifier, "s3:PutObject", resource, mode="GOVERNANCE"))
    short = 365 * RETENTION_YEARS - 1
    assert denying_statements(document, _write(classifier, "s3:PutObjectRetention", resource, days=short))
    exactly = 365 * RETENTION_YEARS
    assert not denying_statements(document, _write(classifier, "s3:PutObjectRetention", resource, days=exactly))
    # A conditional write without lock headers gets the bucket's default retention and is allowed.
    plain = Request(
        classifier,
        "s3:PutObject",
        resource,
        {"aws:SecureTransport": "true", "s3:if-none-match": "*", "s3:ObjectCreationOperation": "true"},
    )
    assert not denying_statements(document, plain)


# ---- IAM --------------------------------------------------------------------------------------------------


def test_each_function_has_its_own_role(synth: Synthesized) -> None:
    roles = {role_of(synth, name) for name in HANDLERS}
    assert len(roles) == 3


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
    assert writes == {f"<{bucket_id}.Arn>/records/*", f"<{bucket_id}.Arn>/{NOTIFICATIONS_ROOT}*"}


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
    assert reconciler - classifier == {"sagemaker:ListTrainingJobs"}
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
    assert sign["Condition"] == {"StringEquals": {"kms:SigningAlgorithm": "RSASSA_PSS_SHA_256"}}
    key = synth.resources[sign["Resource"][1:-5]]["Properties"]  # "<Id.Arn>" -> Id
    assert (key["KeySpec"], key["KeyUsage"]) == ("RSA_2048", "SIGN_VERIFY")


def test_no_iam_policy_grants_delete_or_wildcard_writes_on_the_audit_bucket(synth: Synthesized) -> None:
    bucket_id, _ = audit_bucket(synth)
    allowed_write_prefixes = ("records/*", NOTIFICATIONS_ROOT + "*", "digests/*")
    documents = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::IAM::Policy").values()]
    documents += [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::IAM::ManagedPolicy").values()]
    for document in documents:
        for statement in resolve(document)["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                assert not fnmatchcase(action, "s3:Delete*") and action not in ("s3:*", "*"), action
                assert "Delete" not in action or not action.startswith("s3:"), action
                if action.startswith("s3:Put") or action.startswith("s3:Abort"):
                    for resource in resources:
                        if resource.startswith(f"<{bucket_id}.Arn>"):
                            suffix = resource.removeprefix(f"<{bucket_id}.Arn>/")
                            assert suffix in allowed_write_prefixes, f"{action} on {resource}"


# ---- events, queue, functions ----------------------------------------------------------------------------------


def test_rule_sends_terminal_training_job_state_changes_to_the_encrypted_queue(synth: Synthesized) -> None:
    rules = [r for r in synth.of_type("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    assert len(rules) == 1
    props = rules[0]["Properties"]
    assert props["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Training Job State Change"],
        "detail": {"TrainingJobStatus": ["Completed", "Failed", "Stopped"]},
    }
    (target,) = props["Targets"]
    queue = synth.resources[target["Arn"]["Fn::GetAtt"][0]]
    assert queue["Type"] == "AWS::SQS::Queue" and "KmsMasterKeyId" in queue["Properties"]


def test_queue_has_dlq_and_a_visibility_timeout_of_six_function_timeouts(synth: Synthesized) -> None:
    from infra.constructs.pipeline import max_receive_count

    (mapping,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    queue = synth.resources[mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
    _, classifier = function(synth, "classifier")
    assert mapping["Properties"]["FunctionName"] == {"Ref": function(synth, "classifier")[0]}
    assert queue["VisibilityTimeout"] >= 6 * classifier["Properties"]["Timeout"]
    redrive = queue["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == max_receive_count(1800, queue["VisibilityTimeout"])
    # The redeliveries span the whole CloudTrail wait before anything is dead-lettered.
    assert (redrive["maxReceiveCount"] - 1) * queue["VisibilityTimeout"] >= 1800
    dlq = synth.resources[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
    assert "KmsMasterKeyId" in dlq and dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_dlq_depth_alarm_notifies_the_alert_topic(synth: Synthesized) -> None:
    (mapping,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    queue = synth.resources[mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
    dlq_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    alarms = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    topic_id, _ = synth.one("AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_classifier_consumes_in_batches_reporting_item_failures(synth: Synthesized) -> None:
    (mapping,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": RESERVED}
    _, classifier = function(synth, "classifier")
    assert classifier["Properties"]["ReservedConcurrentExecutions"] == RESERVED


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_functions_run_arm64_python314_with_the_pinned_powertools_layer(synth: Synthesized, name: str) -> None:
    _, fn = function(synth, name)
    props = fn["Properties"]
    assert props["Runtime"] == "python3.14" and props["Architectures"] == ["arm64"]
    (layer,) = props["Layers"]
    assert resolve(layer) == (
        f"arn:aws:lambda:<AWS::Region>:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:{LAYER_VERSION}"
    )
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "ReservedConcurrentExecutions" in props


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_functions_get_the_settings_the_code_reads(synth: Synthesized, name: str) -> None:
    _, fn = function(synth, name)
    env = fn["Properties"]["Environment"]["Variables"]
    expected = set(LAMBDA_ENV) - {"CLASSIFIER_QUEUE_URL", "DIGEST_SIGNING_KEY_ID", "DEAD_LETTER_QUEUE_URL"}
    expected |= {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    if name == "digest":
        expected.add("DIGEST_SIGNING_KEY_ID")
    if name == "classifier":
        expected.add("DEAD_LETTER_QUEUE_URL")
        assert env["DEAD_LETTER_QUEUE_URL"] == {"Ref": dead_letter_queue_id(synth)}
    assert set(env) == expected
    assert env["RETENTION_YEARS"] == str(RETENTION_YEARS) and env["PRIMARY_POLICY"] == "aws-30pct-2026"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "FlopsMeterService"
    bucket_id, _ = audit_bucket(synth)
    assert env["AUDIT_BUCKET_NAME"] == {"Ref": bucket_id}


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_handler_module_is_in_the_staged_asset(synth: Synthesized, name: str) -> None:
    module_path = HANDLERS[name].rsplit(".", 1)[0].replace(".", "/") + ".py"
    from infra.assets import REPO_ROOT

    if not (REPO_ROOT / module_path).is_file():
        pytest.skip(f"{module_path} is not written yet")
    assert (synth.asset_dir / module_path).is_file()


def test_alert_topic_is_encrypted_and_mails_the_configured_address(synth: Synthesized) -> None:
    topic_id, topic = synth.one("AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]
    (subscription,) = synth.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == EMAIL
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic_id}


def test_reconciler_and_digest_run_on_schedules(synth: Synthesized) -> None:
    scheduled = {}
    for rule in synth.of_type("AWS::Events::Rule").values():
        if "ScheduleExpression" in rule["Properties"]:
            (target,) = rule["Properties"]["Targets"]
            scheduled[target["Arn"]["Fn::GetAtt"][0]] = rule["Properties"]["ScheduleExpression"]
    assert scheduled == {
        function(synth, "reconciler")[0]: "rate(1 hour)",
        function(synth, "digest")[0]: "cron(5 * * * ? *)",
    }


# ---- encryption everywhere --------------------------------------------------------------------------------


def test_every_store_and_channel_is_encrypted(synth: Synthesized) -> None:
    for bucket in synth.of_type("AWS::S3::Bucket").values():
        assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    for queue in synth.of_type("AWS::SQS::Queue").values():
        assert "KmsMasterKeyId" in queue["Properties"]
    for topic in synth.of_type("AWS::SNS::Topic").values():
        assert "KmsMasterKeyId" in topic["Properties"]
    for key in synth.of_type("AWS::KMS::Key").values():
        if key["Properties"].get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT":
            assert key["Properties"]["EnableKeyRotation"] is True
    (workgroup,) = synth.of_type("AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"


# ---- Glue / Athena ----------------------------------------------------------------------------------------


def test_glue_table_follows_the_record_model_with_flops_as_double(synth: Synthesized) -> None:
    (table,) = synth.of_type("AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    columns = {c["Name"]: c["Type"] for c in table_input["StorageDescriptor"]["Columns"]}
    assert list(columns.items()) == record_columns()
    assert "classified_flops:double" in columns["flops"] and "metered:double" in columns["flops"]
    assert "threshold:double" in columns["classifications"] and columns["classifications"].startswith("array<struct<")
    assert "cumulative_flops:double" in columns["lineage"]
    assert columns["job"].startswith("struct<") and columns["warnings"] == "array<string>"
    serde = table_input["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"


def test_glue_partition_projection_matches_the_record_key_layout(synth: Synthesized) -> None:
    (table,) = synth.of_type("AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    assert [p["Name"] for p in table_input["PartitionKeys"]] == ["account", "region", "date"]
    params = resolve(table_input["Parameters"])
    assert params["projection.enabled"] == "true" and params["projection.date.format"] == "yyyy-MM-dd"
    bucket_id, _ = audit_bucket(synth)
    key = record_key("123456789012", "eu-west-1", date(2026, 3, 4), "my-job")
    location = params["storage.location.template"]
    expanded = (
        location.replace("${account}", "123456789012")
        .replace("${region}", "eu-west-1")
        .replace("${date}", "2026-03-04")
    )
    assert f"s3://<{bucket_id}>/{key}".startswith(expanded)
    assert f"s3://<{bucket_id}>/{key}".removeprefix(expanded) == "my-job.json"


# ---- outputs and cdk-nag --------------------------------------------------------------------------------------


def test_outputs_name_what_the_cli_and_e2e_tests_need(synth: Synthesized) -> None:
    assert {
        "AuditBucketName",
        "AthenaWorkGroup",
        "AlertTopicArn",
        "GlueDatabase",
        "GlueTable",
        "DigestSigningKeyArn",
        "ClassifierQueueUrl",
        "DeadLetterQueueUrl",
    } <= set(synth.template["Outputs"])


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synthesized) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []


def test_dashboard_and_alarms_read_the_metrics_the_service_emits(synth: Synthesized) -> None:
    import flopsmeter
    from infra.constructs.monitoring import ServiceMetric

    package = Path(flopsmeter.__file__).parent
    code = "\n".join(p.read_text() for sub in ("service", "functions") for p in (package / sub).glob("*.py"))
    assert {m for m in ServiceMetric if f"ServiceMetric.{m.name}" in code} == set(ServiceMetric)  # all emitted
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(resolve(dashboard["Properties"]["DashboardBody"]))
    for metric in ServiceMetric:
        if metric is not ServiceMetric.AUDIT_WRITE_FAILED:
            assert metric.value in body
    assert "ApproximateNumberOfMessagesVisible" in body and "Errors" in body
