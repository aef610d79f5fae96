"""Fill moto 5.2.5's gaps so the service's boto3 code paths run unchanged against the emulator.

What moto does not do, and what ``install()`` adds (emulated behaviour, not AWS's):

* ``CreateTrainingJob`` ignores ``Environment`` and marks the job ``Completed`` at once, with start = end =
  creation. After ``install()`` a new job is ``InProgress`` / ``Starting`` with no start or end time, keeps
  its ``Environment`` and its own ``MetricDefinitions``, and a duplicate name is refused (``ResourceInUse``)
  as SageMaker does. ``set_training_job_state`` moves it on: status, secondary status, start/end times,
  ``TrainingTimeInSeconds``, ``BillableTimeInSeconds``, ``FailureReason``, ``FinalMetricDataList``.
  Tags stay where AWS keeps them: ``ListTags`` on the job ARN (``DescribeTrainingJob`` has no ``Tags``
  member in the real API, so botocore would drop it).
* EventBridge -> SQS: moto's default target input leaves out the envelope's ``account``; it is put back.
* CloudTrail ``LookupEvents`` is not implemented. After ``install()`` every ``CreateTrainingJob`` records a
  management event in the shape LookupEvents returns (``EventId``, ``EventTime``, ``Username``,
  ``AccessKeyId``, ``Resources``, ``CloudTrailEvent`` as a JSON string with ``userIdentity.arn``,
  ``sourceIPAddress``, ``userAgent``, ``requestParameters``, ``responseElements``), and LookupEvents
  answers with one lookup attribute (``EventName``, ``ResourceName`` - the job name or ARN - ``EventId``,
  ``EventSource``, ``Username``, ``ResourceType``, ``ReadOnly``, ``AccessKeyId``), ``StartTime`` /
  ``EndTime``, ``MaxResults`` and ``NextToken``, newest first. An optional delivery lag hides events
  younger than the lag, like CloudTrail's ~15-minute delay.
* STS AssumeRole accepts any role ARN. After ``install()`` a member reader role that does not exist is refused
  (``AccessDenied``), as AWS refuses it (organization mode; other roles unchanged).

* Amazon Bedrock (``moto_ext.bedrock``): a model customization job starts ``InProgress`` (moto ends it at once),
  keeps its ``customizationConfig``, is found by ARN too, and records its ``CreateModelCustomizationJob`` CloudTrail
  event; ``set_model_customization_job_state`` moves it on. SageMaker serverless customization:
  ``ServerlessJobConfig`` is kept and ``JobState.billable_tokens`` sets ``BillableTokenCount``.
* SageMaker training sessions (``moto_ext.training_sessions``) and AWS Batch service jobs (``moto_ext.batch``),
  which moto lacks: served from botocore 1.44's output shapes (``moto_ext.shapes``), their control-plane calls
  recorded in CloudTrail; ``set_training_session_state`` and ``set_service_job_state`` move them on (a Batch job's
  state change puts its "Batch Service Job State Change" event on the default bus). ``ListServiceJobs`` lists a
  queue in a status, and ``SAGEMAKER_TRAINING`` job queues are created and described (``moto_ext.batch_queues``).

* SageMaker HyperPod and the reports queue (``moto_ext.hyperpod``): EC2-style node ids, the cluster's
  ``Orchestrator``, backdated nodes (``set_cluster_nodes``), and SQS ``SenderId`` set from the caller's credentials.

* S3 listings with a prefix read only the keys under it (``moto_ext.s3_listing``): moto reads every key of the
  bucket for each listing; what it returns is unchanged.

The same state is reachable from another process over HTTP (``endpoint=`` on every helper), through
routes added to moto's own ``/moto-api/`` control plane, so a detached ``flopsmeter local up`` server can be
driven like the in-process ``mock_aws``.
"""

from __future__ import annotations

import threading

from flopsmeter.local.moto_ext import (
    batch,
    bedrock,
    cloudtrail,
    eventbridge,
    hyperpod,
    launches,
    routes,
    s3_listing,
    sagemaker,
    sts,
    training_sessions,
)
from flopsmeter.local.moto_ext.batch import ServiceJobState, set_service_job_state
from flopsmeter.local.moto_ext.bedrock import CustomizationJobState, set_model_customization_job_state
from flopsmeter.local.moto_ext.cloudtrail import (
    ManagementEvent,
    clear_cloudtrail_events,
    lookup_cloudtrail_events,
    record_cloudtrail_event,
    set_cloudtrail_lag,
)
from flopsmeter.local.moto_ext.common import EmulatorError, utc
from flopsmeter.local.moto_ext.sagemaker import JobState, set_training_job_state
from flopsmeter.local.moto_ext.training_sessions import SessionState, set_training_session_state

__all__ = [
    "CustomizationJobState",
    "EmulatorError",
    "JobState",
    "ManagementEvent",
    "ServiceJobState",
    "SessionState",
    "clear_cloudtrail_events",
    "install",
    "installed",
    "lookup_cloudtrail_events",
    "record_cloudtrail_event",
    "set_cloudtrail_lag",
    "set_model_customization_job_state",
    "set_service_job_state",
    "set_training_job_state",
    "set_training_session_state",
    "utc",
]

_install_lock = threading.Lock()
_installed = False


def install() -> None:
    """Patch moto (idempotent, process-wide). Call before ``mock_aws()`` or before starting a moto server."""
    global _installed
    with _install_lock:
        if _installed:
            return
        sagemaker.patch()
        bedrock.patch()
        training_sessions.patch()
        batch.patch()

        launches.patch()
        cloudtrail.patch()
        eventbridge.patch()
        sts.patch()
        hyperpod.patch()
        s3_listing.patch()
        routes.add_control_routes()
        _installed = True


def installed() -> bool:
    return _installed
