"""Intake (rule, queue, DLQ, event source) and the functions as they run."""

from __future__ import annotations

import json

import pytest

from flopsmeter.contract import (
    LAMBDA_ENV,
    max_receive_count,
    model_customization_job_state_change_pattern,
    training_job_state_change_pattern,
)
from infra.assets import REPO_ROOT
from infra.layer import POWERTOOLS_VERSION
from tests.infra.policy import Request, allows
from tests.infra.template import (
    HANDLERS,
    MAX_CONCURRENCY,
    RESERVED,
    RETENTION_YEARS,
    Synthesized,
    audit_bucket,
    classifier_queue,
    dead_letter_queue_id,
    event_source,
    function,
)

pytestmark = pytest.mark.infra


def test_rule_sends_terminal_training_job_state_changes_to_the_encrypted_queue(synth: Synthesized) -> None:
    rules = [
        r
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.sagemaker"]
        and r["Properties"]["EventPattern"].get("detail-type") != ["AWS API Call via CloudTrail"]  # provenance's
    ]
    assert len(rules) == 1
    props = rules[0]["Properties"]
    assert props["EventPattern"] == training_job_state_change_pattern()
    assert props["EventPattern"]["detail"] == {"TrainingJobStatus": ["Completed", "Failed", "Stopped"]}
    (target,) = props["Targets"]
    queue = synth.resources[target["Arn"]["Fn::GetAtt"][0]]
    assert queue["Type"] == "AWS::SQS::Queue" and "KmsMasterKeyId" in queue["Properties"]
    # What EventBridge cannot deliver in 24 h goes to the classifier's dead-letter queue.
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dead_letter_queue_id(synth), "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 24 * 3600, "MaximumRetryAttempts": 185}


def test_bedrock_customization_jobs_reach_the_same_queue_and_only_through_their_rule(synth: Synthesized) -> None:
    (rule_id, rule), *others = [
        (i, r)
        for i, r in synth.of_type("AWS::Events::Rule").items()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.bedrock"]
    ]
    assert others == []
    props = rule["Properties"]
    assert props["EventPattern"] == model_customization_job_state_change_pattern()
    assert props["EventPattern"]["detail"] == {"jobStatus": ["Completed", "Failed", "Stopped"]}
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [target["Arn"]["Fn::GetAtt"][0], "Arn"]}
    assert synth.resources[target["Arn"]["Fn::GetAtt"][0]] == classifier_queue(synth)
    policies = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::SQS::QueuePolicy").values()]
    statements = [
        st for doc in policies for st in doc["Statement"] if st.get("Sid") == "OnlyModelCustomizationJobEndedRule"
    ]
    assert len(statements) == 2  # the queue and its DLQ, each for this rule only
    assert all(json.dumps({"Fn::GetAtt": [rule_id, "Arn"]}) in json.dumps(st["Condition"]) for st in statements)


def test_queue_has_dlq_and_a_visibility_timeout_of_six_function_timeouts(synth: Synthesized) -> None:
    mapping = event_source(synth, "classifier")
    queue = classifier_queue(synth)["Properties"]
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
    dlq_id = dead_letter_queue_id(synth)
    alarms = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and a["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    ]
    assert len(alarms) == 1  # (provenance's own dead-letter queue has its own alarm: tests/infra/test_provenance.py)
    alarm = alarms[0]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    topic_id, _ = synth.one("AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_classifier_consumes_in_batches_throttled_by_the_event_source(synth: Synthesized) -> None:
    mapping = event_source(synth, "classifier")
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": MAX_CONCURRENCY}
    # The reservation is an option (configured here); the scheduled functions never reserve any.
    _, classifier = function(synth, "classifier")
    assert classifier["Properties"]["ReservedConcurrentExecutions"] == RESERVED >= MAX_CONCURRENCY
    for name in ("reconciler", "digest"):
        assert "ReservedConcurrentExecutions" not in function(synth, name)[1]["Properties"]


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_functions_run_arm64_python314_with_the_pinned_powertools_layer(synth: Synthesized, name: str) -> None:
    _, fn = function(synth, name)
    props = fn["Properties"]
    assert props["Runtime"] == "python3.14" and props["Architectures"] == ["arm64"]
    (layer,) = props["Layers"]
    assert layer == "{{resolve:ssm:/aws/service/powertools/python/arm64/python3.14/" + POWERTOOLS_VERSION + "}}"
    assert props["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_functions_get_the_settings_the_code_reads(synth: Synthesized, name: str) -> None:
    from flopsmeter.functions import settings

    model = {
        "classifier": settings.ClassifierSettings,
        "reconciler": settings.ReconcilerSettings,
        "digest": settings.DigestSettings,
        "compaction": settings.CompactorSettings,
        "hyperpod": settings.HyperPodSettings,
    }.get(name, settings.FunctionSettings)
    _, fn = function(synth, name)
    env = fn["Properties"]["Environment"]["Variables"]
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    assert powertools <= set(env)
    read = set(model.model_fields)
    assert set(env) - powertools <= read  # nothing the function does not read
    assert {k for k, f in model.model_fields.items() if f.is_required()} <= set(env)
    organization_only = {"MEMBER_ROLE_NAME", "MEMBER_ACCOUNTS", "MEMBER_REGIONS", "RECONCILE_CURSOR_PARAMETER"}
    unset = {"RECONCILE_JOBS_PER_ACCOUNT", "RECONCILE_ACCOUNTS_PER_RUN"}  # their defaults apply
    assert read - set(env) <= organization_only | unset  # single-account: tests/infra/test_organization.py
    assert set(env) - powertools <= set(LAMBDA_ENV) | organization_only | unset
    if name == "classifier":
        assert env["DEAD_LETTER_QUEUE_URL"] == {"Ref": dead_letter_queue_id(synth)}
    if name in ("classifier", "reconciler"):
        assert env["PRIMARY_POLICY"] == "aws-30pct-2026" and env["ESTABLISHED_OUTSIDE_EU"] == "false"
        assert float(env["ENERGY_PUE"]) >= 1.0 and 0 < float(env["ENERGY_POWER_UTILISATION"]) <= 1
    assert env["RETENTION_YEARS"] == str(RETENTION_YEARS)
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "FlopsMeterService"
    bucket_id, _ = audit_bucket(synth)
    assert env["AUDIT_BUCKET_NAME"] == {"Ref": bucket_id}


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_handler_module_is_in_the_staged_asset(synth: Synthesized, name: str) -> None:
    module_path = HANDLERS[name].rsplit(".", 1)[0].replace(".", "/") + ".py"
    if not (REPO_ROOT / module_path).is_file():
        pytest.skip(f"{module_path} is not written yet")
    assert (synth.asset_dir / module_path).is_file()


def test_reconciler_digest_and_compaction_run_on_schedules(synth: Synthesized) -> None:
    scheduled = {}
    for rule in synth.of_type("AWS::Events::Rule").values():
        if "ScheduleExpression" in rule["Properties"]:
            (target,) = rule["Properties"]["Targets"]
            scheduled[target["Arn"]["Fn::GetAtt"][0]] = rule["Properties"]["ScheduleExpression"]
    assert scheduled == {
        function(synth, "reconciler")[0]: "rate(1 hour)",
        function(synth, "digest")[0]: "cron(5 * * * ? *)",
        function(synth, "compaction")[0]: "cron(20 0/6 * * ? *)",
        function(synth, "hyperpod")[0]: "cron(20 0 * * ? *)",
    }


def test_function_logs_are_encrypted_with_a_key_only_cloudwatch_logs_of_this_account_may_use(
    synth: Synthesized,
) -> None:
    """Issue 12.10: the logs carry job names and principal ARNs."""
    for fn_id, fn in synth.of_type("AWS::Lambda::Function").items():
        group_id = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = synth.resources[group_id]["Properties"]
        key_id = group["KmsKeyId"]["Fn::GetAtt"][0]
        key = synth.resources[key_id]["Properties"]
        assert key["EnableKeyRotation"] is True, fn_id
        logs = "logs.<AWS::Region>.amazonaws.com"
        ours = {
            "kms:EncryptionContext:aws:logs:arn": "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:x"
        }
        assert allows(key["KeyPolicy"], Request(logs, "kms:GenerateDataKey", "*", ours, service=True))
        theirs = {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:999988887777:log-group:x"}
        assert not allows(key["KeyPolicy"], Request(logs, "kms:GenerateDataKey", "*", theirs, service=True))
