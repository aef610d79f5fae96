"""CloudTrail launch calls as EventBridge delivers them ("AWS API Call via CloudTrail"), for the provenance tests."""

from __future__ import annotations

from flopsmeter.functions.inbound import LaunchCall as LaunchCallEvent
from flopsmeter.functions.inbound import parse_inbound
from flopsmeter.ports import LaunchCall
from tests.support.fakes import ACCOUNT, REGION

SWEEP = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/sweep-1"
PIPELINE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/train-pipe/execution/abc123"
CAROL = f"arn:aws:sts::{ACCOUNT}:assumed-role/MLEngineer/carol"


def launch_event(name: str, response: dict, *, error: str | None = None, principal: str = CAROL) -> dict:
    detail = {
        "eventVersion": "1.09",
        "eventSource": "sagemaker.amazonaws.com",
        "eventName": name,
        "eventID": f"evt-{name}",
        "eventTime": "2026-11-20T09:00:00Z",
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.9",
        "userAgent": "Boto3/1.35",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": principal,
            "sessionContext": {"sessionIssuer": {"arn": f"arn:aws:iam::{ACCOUNT}:role/MLEngineer"}},
        },
        "requestParameters": {
            "hyperParameterTuningJobName": "sweep-1",
            "hyperParameterTuningJobConfig": {"resourceLimits": {"maxNumberOfTrainingJobs": 20}},
            "environment": "HIDDEN_DUE_TO_SECURITY_REASONS",
        },
        "responseElements": response,
    }
    if error:
        detail["errorCode"] = error
    return {"source": "aws.sagemaker", "detail-type": "AWS API Call via CloudTrail", "detail": detail}


def launch_call(event: dict) -> LaunchCall:
    """The launch call of ``event`` as the provenance function hands it to the service (``MalformedEvent`` when the
    edge model refuses the event)."""
    parsed: LaunchCallEvent = parse_inbound(event, accept=(LaunchCallEvent,))
    return parsed.to_call()
