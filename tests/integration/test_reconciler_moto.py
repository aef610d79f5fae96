"""The reconciler on moto: a job whose state-change event was lost still gets its record.

Emulated: the SageMaker job lifecycle and CloudTrail LookupEvents come from flopsmeter.local.moto_ext.
"""

from __future__ import annotations

from flopsmeter.audit.keys import record_key
from flopsmeter.service.reconcile import reconcile
from tests.support.moto_world import ACCOUNT, REGION


def naive_last_modified(*names: str) -> None:
    """Work around a moto_ext/moto mismatch: moto_ext stores an aware LastModifiedTime, moto's ListTrainingJobs
    filter compares it with a naive one. Test-side glue until moto_ext stores naive UTC like moto does."""
    from moto.sagemaker.models import sagemaker_backends

    for name in names:
        job = sagemaker_backends[ACCOUNT][REGION].training_jobs[name]
        if job.last_modified_time.tzinfo is not None:
            job.last_modified_time = job.last_modified_time.replace(tzinfo=None)


def test_reconciler_finds_the_job_whose_event_was_lost(aws):
    lost_end = aws.job("job-lost-event", hours=2)
    running_end = aws.job("job-still-running", status="InProgress")
    naive_last_modified("job-lost-event", "job-still-running")
    deps = aws.deps()
    report = reconcile(deps, aws.config, lookback_hours=24)
    assert report.recorded == ["job-lost-event"] and not report.failed
    record = aws.store.get_record(record_key(ACCOUNT, REGION, lost_end, "job-lost-event"))
    assert record.eventbridge_event_id is None and record.warnings[0].startswith("reconciled:")
    assert not aws.store.exists(record_key(ACCOUNT, REGION, running_end, "job-still-running"))
    again = reconcile(deps, aws.config, lookback_hours=24)
    assert again.recorded == [] and again.already_recorded == 1
    assert len(list(aws.store.list_versions(record_key(ACCOUNT, REGION, lost_end, "job-lost-event")))) == 1
