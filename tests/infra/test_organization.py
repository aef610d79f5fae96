"""Issue 14 (infra): organization mode: the organization bus and its policy, the StackSet (a stack of its own), the
member stack's forwarding rule and read-only role, evaluated statement by statement; cdk-nag, cfn-lint and checkov
clean for all three templates. Issue 24.4: two member regions deploy without a name collision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flopsmeter.contract import (
    batch_service_job_state_change_pattern,
    member_reader_role_name,
    model_customization_job_state_change_pattern,
    training_job_state_change_pattern,
    training_launch_pattern,
    training_session_end_pattern,
    work_launch_patterns,
)
from infra.config import cdk_json_context
from infra.member import (
    CLASSIFIER_ROLE_ARN,
    HYPERPOD_ROLE_ARN,
    ORGANIZATION_BUS_ARN,
    ORGANIZATION_ID,
    RECONCILER_ROLE_ARN,
)
from infra.stackset import stack_set_stack_name
from infra.synth import build_app, write_member_template
from tests.infra.policy import Request, allows, resolve
from tests.infra.template import (
    HANDLERS,
    NO_BUNDLING,
    Synthesized,
    as_list,
    assert_lint_and_checkov_clean,
    dead_letter_queue_id,
    function,
    glue_table,
    role_of,
    role_statements,
    synthesize,
)

pytestmark = pytest.mark.infra

ORG = "o-a1b2c3d4e5"
OUS = ["ou-ab12-cdefgh34", "r-ab12"]
REGIONS = ["eu-west-1", "eu-central-1"]
MEMBER = "arn:aws:iam::444455556666:role/AnyRoleInAMemberAccount"
MEMBER_ACCOUNT = "444455556666"


@pytest.fixture(scope="module")
def org_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synthesized, dict[str, Any], dict[str, Any]]:
    """The compliance stack, the member template, and the StackSet's own stack (``FlopsMeter-prod-Members``)."""
    tmp = tmp_path_factory.mktemp("org")
    context = {
        **cdk_json_context(),
        **NO_BUNDLING,
        "deployment_mode": "organization",
        "organization_id": ORG,
        "member_organizational_units": ",".join(OUS),  # as `-c key=a,b` passes it
        "member_regions": REGIONS,
        "member_accounts": [MEMBER_ACCOUNT],
        "create_organization_trail": "true",
    }
    app, stack = build_app(context, outdir=str(tmp / "cdk.out"), asset_dir=tmp / "asset")
    assembly = app.synth()  # cdk-nag on the compliance stack; member_template ran it on the member stack
    member_path = write_member_template(stack, assembly.directory)
    assert member_path is not None and member_path.name == "FlopsMeterMember-prod.template.json"
    template = json.loads(json.dumps(assembly.get_stack_by_name(stack.stack_name).template))
    synthesized = Synthesized(template, tmp / "cdk.out", tmp / "asset", stack.stack_name)
    members = json.loads(json.dumps(assembly.get_stack_by_name(stack_set_stack_name("prod")).template))
    return synthesized, json.loads(member_path.read_text()), members


@pytest.fixture(scope="module")
def org(org_app: tuple[Synthesized, dict[str, Any], dict[str, Any]]) -> tuple[Synthesized, dict[str, Any]]:
    synth, member, _ = org_app
    return synth, member


def _bus(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    return synth.one("AWS::Events::EventBus")


def test_the_organization_bus_accepts_events_from_the_organization_only(
    org: tuple[Synthesized, dict[str, Any]],
) -> None:
    synth, _ = org
    bus_id, bus = _bus(synth)
    assert bus["Properties"]["Name"] == "flopsmeter-prod-organization"
    (policy,) = synth.of_type("AWS::Events::EventBusPolicy").values()
    assert policy["Properties"]["EventBusName"] == {"Ref": bus_id}
    document = {"Statement": [policy["Properties"]["Statement"]]}
    put = f"<{bus_id}.Arn>"
    assert allows(document, Request(MEMBER, "events:PutEvents", put, {"aws:PrincipalOrgID": ORG}))
    assert not allows(document, Request(MEMBER, "events:PutEvents", put, {"aws:PrincipalOrgID": "o-zzzzzzzzzz"}))
    assert not allows(document, Request(MEMBER, "events:PutEvents", put))  # no organization at all
    assert not allows(document, Request(MEMBER, "events:PutRule", put, {"aws:PrincipalOrgID": ORG}))


def test_a_rule_on_the_organization_bus_feeds_the_classifier_queue(org: tuple[Synthesized, dict[str, Any]]) -> None:
    synth, _ = org
    bus_id, _ = _bus(synth)
    (rule_id, rule) = next(
        (k, r)
        for k, r in synth.of_type("AWS::Events::Rule").items()
        if r["Properties"].get("EventBusName") == {"Ref": bus_id}
        and r["Properties"]["EventPattern"].get("source") == ["aws.sagemaker"]
        and r["Properties"]["EventPattern"].get("detail-type") != ["AWS API Call via CloudTrail"]
    )
    assert rule["Properties"]["EventPattern"] == training_job_state_change_pattern()
    (target,) = rule["Properties"]["Targets"]
    dlq_id = dead_letter_queue_id(synth)
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    queue_id = target["Arn"]["Fn::GetAtt"][0]
    for queue in (queue_id, dlq_id):
        (policy,) = [
            p["Properties"]["PolicyDocument"]
            for p in synth.of_type("AWS::SQS::QueuePolicy").values()
            if {"Ref": queue} in p["Properties"]["Queues"]
        ]
        context = {
            "aws:SecureTransport": "true",
            "aws:SourceAccount": "<AWS::AccountId>",
            "aws:SourceArn": f"<{rule_id}.Arn>",
        }
        assert allows(
            policy, Request("events.amazonaws.com", "sqs:SendMessage", f"<{queue}.Arn>", context, service=True)
        )


def test_a_service_managed_stackset_deploys_the_member_stack_everywhere(
    org_app: tuple[Synthesized, dict[str, Any], dict[str, Any]],
) -> None:
    synth, member, members = org_app
    assert not synth.of_type("AWS::CloudFormation::StackSet"), "the StackSet has a stack of its own"
    (stack_set,) = [r for r in members["Resources"].values() if r["Type"] == "AWS::CloudFormation::StackSet"]
    props = stack_set["Properties"]
    assert props["PermissionModel"] == "SERVICE_MANAGED" and props["CallAs"] == "DELEGATED_ADMIN"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["StackInstancesGroup"] == [{"DeploymentTargets": {"OrganizationalUnitIds": OUS}, "Regions": REGIONS}]
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"] and props["StackSetName"] == "FlopsMeterMember-prod"
    assert json.loads(props["TemplateBody"]) == member
    bus_id, _ = _bus(synth)
    parameters = {p["ParameterKey"]: _from_compliance_stack(synth, p["ParameterValue"]) for p in props["Parameters"]}
    assert parameters == {
        ORGANIZATION_BUS_ARN: {"Fn::GetAtt": [bus_id, "Arn"]},
        CLASSIFIER_ROLE_ARN: {"Fn::GetAtt": [role_of(synth, "classifier"), "Arn"]},
        RECONCILER_ROLE_ARN: {"Fn::GetAtt": [role_of(synth, "reconciler"), "Arn"]},
        HYPERPOD_ROLE_ARN: {"Fn::GetAtt": [role_of(synth, "hyperpod"), "Arn"]},
        ORGANIZATION_ID: ORG,
    }
    assert set(member["Parameters"]) == set(parameters)  # nothing else to fill in, no bootstrap version


def _from_compliance_stack(synth: Synthesized, value: Any) -> Any:
    """A value the StackSet's stack reads from the compliance stack's outputs (``Fn::GetStackOutput``, CDK's weak
    cross-stack reference: no export that would pin the compliance stack), as the compliance stack defines it."""
    if not isinstance(value, dict) or "Fn::GetStackOutput" not in value:
        return value
    reference = value["Fn::GetStackOutput"]
    assert reference["StackName"] == synth.stack_name and reference["Region"] == {"Ref": "AWS::Region"}
    output = synth.template["Outputs"][reference["OutputName"]]
    assert "Export" not in output
    return output["Value"]


def test_one_refusing_member_account_rolls_back_neither_the_evidence_nor_the_rollout(
    org_app: tuple[Synthesized, dict[str, Any], dict[str, Any]],
) -> None:
    """Issue 24.4: the StackSet is the only resource that depends on other accounts: it has a stack of its own,
    deployed after the compliance stack, and tolerates any number of failed accounts per region (the operation
    succeeds, the failed instances stay listed), so neither stack rolls back for one account."""
    synth, _, members = org_app
    (stack_set,) = [r for r in members["Resources"].values() if r["Type"] == "AWS::CloudFormation::StackSet"]
    assert stack_set["Properties"]["OperationPreferences"] == {
        "FailureTolerancePercentage": 100,
        "MaxConcurrentPercentage": 25,
        "ConcurrencyMode": "SOFT_FAILURE_TOLERANCE",
        "RegionConcurrencyType": "PARALLEL",
    }
    assert {r["Type"] for r in members["Resources"].values()} == {"AWS::CloudFormation::StackSet"}
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert synth.stack_name in manifest["artifacts"][stack_set_stack_name("prod")]["dependencies"]
    assert synth.template["Outputs"]["MemberStackSetName"]["Value"] == "FlopsMeterMember-prod"


def _role_created_in(member: dict[str, Any], role: dict[str, Any], region: str) -> bool:
    """Whether the member template creates ``role`` in ``region`` (its condition, evaluated for that region)."""
    if "Condition" not in role:
        return True
    (left, right) = member["Conditions"][role["Condition"]]["Fn::Equals"]
    assert left == {"Ref": "AWS::Region"}
    return bool(right == region)


def test_no_fixed_name_role_or_dashboard_collides_across_member_regions(
    org_app: tuple[Synthesized, dict[str, Any], dict[str, Any]],
) -> None:
    """Issue 24.4: IAM and dashboard names are account-wide; the StackSet deploys one member instance per account
    and region. A named role is created by one region's instance only; the dashboard's name carries the region."""
    synth, member, members = org_app
    named = {
        k: r for k, r in member["Resources"].items() if r["Type"] == "AWS::IAM::Role" and "RoleName" in r["Properties"]
    }
    assert [r["Properties"]["RoleName"] for r in named.values()] == [member_reader_role_name("prod")]
    for role in named.values():
        assert [region for region in REGIONS if _role_created_in(member, role, region)] == [REGIONS[0]]
    for template in (synth.template, members):
        for resource in template["Resources"].values():
            assert not (resource["Type"] == "AWS::IAM::Role" and "RoleName" in resource["Properties"])
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == {"Fn::Join": ["", ["FlopsMeter-prod-", {"Ref": "AWS::Region"}]]}


def _member_resource(member: dict[str, Any], cfn_type: str, logical_prefix: str) -> dict[str, Any]:
    (found,) = [v for k, v in member["Resources"].items() if v["Type"] == cfn_type and k.startswith(logical_prefix)]
    return found


def _policy_of(member: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    (role_id,) = [
        k for k, v in member["Resources"].items() if v["Type"] == "AWS::IAM::Role" and k.startswith(role_prefix)
    ]
    statements: list[dict[str, Any]] = [
        statement
        for inline in member["Resources"][role_id]["Properties"].get("Policies", [])
        for statement in resolve(inline["PolicyDocument"])["Statement"]
    ]
    for policy in member["Resources"].values():
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += resolve(policy["Properties"]["PolicyDocument"])["Statement"]
    return statements


@pytest.mark.parametrize("who", ["<ClassifierRoleArn>", "<ReconcilerRoleArn>"])
def test_the_member_role_trusts_the_compliance_functions_in_the_organization_only(
    org: tuple[Synthesized, dict[str, Any]], who: str
) -> None:
    _, member = org
    reader = _member_resource(member, "AWS::IAM::Role", "Reader")["Properties"]
    assert reader["RoleName"] == member_reader_role_name("prod") and reader["MaxSessionDuration"] == 3600
    trust = reader["AssumeRolePolicyDocument"]
    in_org = {"aws:PrincipalOrgID": "<OrganizationId>"}
    assert allows(trust, Request(who, "sts:AssumeRole", "*", in_org))
    assert not allows(trust, Request(who, "sts:AssumeRole", "*", {"aws:PrincipalOrgID": "o-zzzzzzzzzz"}))
    assert not allows(trust, Request(who, "sts:AssumeRole", "*"))
    assert not allows(trust, Request(MEMBER, "sts:AssumeRole", "*", in_org))
    assert not allows(trust, Request("lambda.amazonaws.com", "sts:AssumeRole", "*", in_org, service=True))


def test_the_member_role_may_read_job_facts_and_nothing_else(org: tuple[Synthesized, dict[str, Any]]) -> None:
    _, member = org
    pairs = {
        (action, resource)
        for statement in _policy_of(member, "Reader")
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }
    scoped = set()
    for region in REGIONS:  # the one role per account reads every member region's jobs
        jobs = f"arn:<AWS::Partition>:sagemaker:{region}:<AWS::AccountId>:training-job/*"
        customization_jobs = f"arn:<AWS::Partition>:bedrock:{region}:<AWS::AccountId>:model-customization-job/*"
        scoped |= {
            ("sagemaker:DescribeTrainingJob", jobs),
            ("sagemaker:ListTags", jobs),
            (
                "sagemaker:ListPipelineExecutionSteps",
                f"arn:<AWS::Partition>:sagemaker:{region}:<AWS::AccountId>:pipeline/*",
            ),
            ("bedrock:GetModelCustomizationJob", customization_jobs),
            ("bedrock:ListTagsForResource", customization_jobs),
            (
                "sagemaker:DescribeTrainingSession",
                f"arn:<AWS::Partition>:sagemaker:{region}:<AWS::AccountId>:training-session/*",
            ),
            # issue 26: HyperPod clusters compared with their reports
            ("sagemaker:DescribeCluster", f"arn:<AWS::Partition>:sagemaker:{region}:<AWS::AccountId>:cluster/*"),
            ("sagemaker:ListClusterNodes", f"arn:<AWS::Partition>:sagemaker:{region}:<AWS::AccountId>:cluster/*"),
        }
    assert pairs == scoped | {
        ("iam:GetRole", "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*"),  # a HyperPod report's sender
        ("sagemaker:ListClusters", "*"),
        ("sagemaker:ListTrainingJobs", "*"),
        ("bedrock:ListModelCustomizationJobs", "*"),
        ("cloudwatch:GetMetricData", "*"),
        ("cloudwatch:GetMetricStatistics", "*"),
        ("cloudtrail:LookupEvents", "*"),
        ("sagemaker:ListTrainingSessions", "*"),
        ("sagemaker:ListModelPackages", "*"),
        ("batch:DescribeServiceJob", "*"),
        ("batch:DescribeJobQueues", "*"),  # the reconciler's AWS Batch pass in the member account
        ("batch:ListServiceJobs", "*"),
    }
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in _policy_of(member, "Reader"))


def test_the_member_forwards_training_job_events_to_the_organization_bus(
    org: tuple[Synthesized, dict[str, Any]],
) -> None:
    _, member = org
    rule = _member_resource(member, "AWS::Events::Rule", "ForwardTrainingJobEnded")["Properties"]
    assert rule["EventPattern"] == training_job_state_change_pattern() and "EventBusName" not in rule
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": ORGANIZATION_BUS_ARN}
    role = _member_resource(member, "AWS::IAM::Role", "ForwardRole")["Properties"]
    assert target["RoleArn"]["Fn::GetAtt"][1] == "Arn"
    trust = role["AssumeRolePolicyDocument"]
    own = {"aws:SourceAccount": "<AWS::AccountId>"}
    assert allows(trust, Request("events.amazonaws.com", "sts:AssumeRole", "*", own, service=True))
    assert not allows(
        trust, Request("events.amazonaws.com", "sts:AssumeRole", "*", {"aws:SourceAccount": "1"}, service=True)
    )
    (put,) = _policy_of(member, "ForwardRole")
    assert (put["Action"], put["Resource"]) == ("events:PutEvents", f"<{ORGANIZATION_BUS_ARN}>")


@pytest.mark.parametrize(
    ("rule_id", "pattern"),
    [
        ("ForwardModelCustomizationJobEnded", model_customization_job_state_change_pattern),
        ("ForwardLaunchCalls", training_launch_pattern),
    ],
)
def test_the_member_also_forwards_bedrock_jobs_and_launch_calls_with_the_same_role(
    org: tuple[Synthesized, dict[str, Any]], rule_id: str, pattern: Any
) -> None:
    _, member = org
    rule = _member_resource(member, "AWS::Events::Rule", rule_id)["Properties"]
    assert rule["EventPattern"] == pattern() and "EventBusName" not in rule
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": ORGANIZATION_BUS_ARN}
    forward = _member_resource(member, "AWS::Events::Rule", "ForwardTrainingJobEnded")["Properties"]
    assert target["RoleArn"] == forward["Targets"][0]["RoleArn"]


def test_an_organization_trail_logs_the_launch_calls_of_every_account_and_region(
    org: tuple[Synthesized, dict[str, Any]],
) -> None:
    """Issue 24.4: the member accounts' buses see their launch calls only while a trail logs them; with
    ``create_organization_trail`` the compliance stack creates one (else ``ProvenanceTrailRequirement`` says how to
    check the one that must exist)."""
    synth, _ = org
    ((trail_id, trail),) = synth.of_type("AWS::CloudTrail::Trail").items()
    props = trail["Properties"]
    assert props["IsOrganizationTrail"] is True and props["IsMultiRegionTrail"] is True
    assert props["IncludeGlobalServiceEvents"] is True and props["IsLogging"] is True
    assert props["EventSelectors"][0]["ReadWriteType"] == "WriteOnly"
    assert synth.template["Outputs"]["ProvenanceTrailRequirement"]["Value"] == {"Fn::GetAtt": [trail_id, "Arn"]}
    bucket_id = props["S3BucketName"]["Ref"]
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    write = f"<{bucket_id}.Arn>/AWSLogs/{ORG}/{MEMBER_ACCOUNT}/CloudTrail/eu-west-1/2026/03/01/x.json.gz"
    context = {"aws:SecureTransport": "true", "s3:x-amz-acl": "bucket-owner-full-control"}
    assert allows(policy, Request("cloudtrail.amazonaws.com", "s3:PutObject", write, context, service=True))


def test_the_organization_bus_feeds_bedrock_jobs_to_the_queue_and_launch_calls_to_provenance(
    org: tuple[Synthesized, dict[str, Any]],
) -> None:
    synth, _ = org
    bus_id, _ = _bus(synth)
    on_bus = [r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()]
    on_bus = [r for r in on_bus if r.get("EventBusName") == {"Ref": bus_id}]
    patterns = [r["EventPattern"] for r in on_bus]
    assert model_customization_job_state_change_pattern() in patterns
    (launch,) = [
        r
        for r in on_bus
        if r["EventPattern"].get("detail-type") == ["AWS API Call via CloudTrail"]
        and "CreateTrainingJob" in r["EventPattern"]["detail"]["eventName"]
    ]
    assert launch["EventPattern"] == training_launch_pattern()
    (target,) = launch["Targets"]
    function = synth.resources[target["Arn"]["Fn::GetAtt"][0]]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Handler"] == "lambdas.provenance.handler.lambda_handler"


@pytest.mark.parametrize("name", ["classifier", "reconciler"])
def test_the_functions_may_assume_the_member_role_inside_the_organization_only(
    org: tuple[Synthesized, dict[str, Any]], name: str
) -> None:
    synth, _ = org
    (assume,) = [s for s in role_statements(synth, role_of(synth, name)) if s["Action"] == "sts:AssumeRole"]
    assert assume["Resource"] == f"arn:<AWS::Partition>:iam::*:role/{member_reader_role_name('prod')}"
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG}}
    assert not any(s["Action"] == "sts:AssumeRole" for s in role_statements(synth, role_of(synth, "digest")))


def test_both_templates_pass_cdk_nag_cfn_lint_and_checkov(org: tuple[Synthesized, dict[str, Any]]) -> None:
    synth, _ = org
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])] == []
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    assert [Path(t).name for t in templates] == [
        "FlopsMeter-prod-Members.template.json",
        "FlopsMeter-prod.template.json",
        "FlopsMeterMember-prod.template.json",
    ]
    assert_lint_and_checkov_clean([Path(t) for t in templates])


def test_the_functions_are_told_the_mode_the_member_role_and_where_the_rotation_resumes(
    org: tuple[Synthesized, dict[str, Any]], tmp_path: Path
) -> None:
    """The runtime half (flopsmeter.functions.settings) reads what the stack sets; single-account sets no role."""
    synth, _ = org
    env = {name: function(synth, name)[1]["Properties"]["Environment"]["Variables"] for name in HANDLERS}
    for name in ("classifier", "reconciler"):
        assert env[name]["DEPLOYMENT_MODE"] == "organization"
        assert env[name]["MEMBER_ROLE_NAME"] == member_reader_role_name("prod")
    assert "MEMBER_ROLE_NAME" not in env["digest"]
    assert int(env["classifier"]["MAX_RECEIVE_COUNT"]) >= 2
    assert env["reconciler"]["MEMBER_REGIONS"] == env["classifier"]["MEMBER_REGIONS"] == ",".join(REGIONS)
    assert env["reconciler"]["MEMBER_ACCOUNTS"] == MEMBER_ACCOUNT
    table = glue_table(synth)
    parameters = table["Properties"]["TableInput"]["Parameters"]  # Athena sees every member's partitions
    for column, own, members in (("account", "AWS::AccountId", MEMBER_ACCOUNT), ("region", "AWS::Region", REGIONS)):
        condition, listed, added = parameters[f"projection.{column}.values"]["Fn::If"]
        members = members if isinstance(members, str) else ",".join(members)
        assert listed == members  # this stack's own value is already one of the members': not twice
        assert added == {"Fn::Join": ["", [{"Ref": own}, f",{members}"]]} or added == {
            "Fn::Join": [",", [{"Ref": own}, members]]
        }
        equals = [{"Fn::Equals": [{"Ref": own}, m]} for m in members.split(",")]
        assert synth.template["Conditions"][condition] == (equals[0] if len(equals) == 1 else {"Fn::Or": equals})
    cursor_id, cursor = synth.one("AWS::SSM::Parameter")
    assert env["reconciler"]["RECONCILE_CURSOR_PARAMETER"] == {"Ref": cursor_id}
    statements = role_statements(synth, role_of(synth, "reconciler"))
    put = [s for s in statements if "ssm:PutParameter" in as_list(s["Action"])]
    assert put and all(s["Resource"] != "*" for s in put)
    assert any(s["Action"] == "organizations:ListAccounts" for s in statements)
    classifier = role_statements(synth, role_of(synth, "classifier"))
    assert not any("organizations:ListAccounts" in as_list(s["Action"]) for s in classifier)

    single = synthesize(tmp_path)
    variables = function(single, "classifier")[1]["Properties"]["Environment"]["Variables"]
    assert variables["DEPLOYMENT_MODE"] == "single-account" and "MEMBER_ROLE_NAME" not in variables
    assert not single.of_type("AWS::SSM::Parameter")
    table = glue_table(single)
    assert table["Properties"]["TableInput"]["Parameters"]["projection.account.values"] == {"Ref": "AWS::AccountId"}


@pytest.mark.parametrize(
    ("rule_id", "pattern"),
    [
        ("ForwardTrainingSessionEnded", training_session_end_pattern),
        ("ForwardBatchServiceJobEnded", batch_service_job_state_change_pattern),
        ("ForwardBatchLaunchCalls", lambda: work_launch_patterns()[1]),
    ],
)
def test_the_member_forwards_training_sessions_and_batch_service_jobs(
    org: tuple[Synthesized, dict[str, Any]], rule_id: str, pattern: Any
) -> None:
    """Issue 26: session calls, Batch service-job events and SubmitServiceJob reach the organization bus, where the
    compliance stack's rules send them on (queue, provenance function)."""
    synth, member = org
    rule = _member_resource(member, "AWS::Events::Rule", rule_id)["Properties"]
    assert rule["EventPattern"] == pattern() and rule["Targets"][0]["Arn"] == {"Ref": ORGANIZATION_BUS_ARN}
    bus_id, _ = _bus(synth)
    on_bus = [r["Properties"]["EventPattern"] for r in synth.of_type("AWS::Events::Rule").values()
              if r["Properties"].get("EventBusName") == {"Ref": bus_id}]  # fmt: skip
    assert pattern() in on_bus


def test_the_hyperpod_function_reads_member_clusters_through_the_reader_role(
    org: tuple[Synthesized, dict[str, Any]],
) -> None:
    """Issue 26: the daily pass compares every member account's clusters, and a member's report is confirmed there."""
    from flopsmeter.functions.settings import HyperPodSettings

    synth, _ = org
    env = function(synth, "hyperpod")[1]["Properties"]["Environment"]["Variables"]
    assert env["DEPLOYMENT_MODE"] == "organization" and env["MEMBER_ROLE_NAME"] == "FlopsMeterMemberReader-prod"
    assert env["MEMBER_REGIONS"] == ",".join(REGIONS)
    assert set(env) - {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(
        HyperPodSettings.model_fields
    )  # organization mode's settings, all read (MEMBER_ROLE_NAME is what HyperPodSettings requires there)
    statements = role_statements(synth, role_of(synth, "hyperpod"))
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert "sts:AssumeRole" in actions
    # member_accounts is configured here: the pass uses it, and needs no organizations:ListAccounts
    assert env["MEMBER_ACCOUNTS"] == MEMBER_ACCOUNT and "organizations:ListAccounts" not in actions
