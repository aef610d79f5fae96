"""Who created a job that no SageMaker training-job event describes (a training session, an AWS Batch service job,
a Bedrock customization job): the provenance captured at launch, read by key; CloudTrail's LookupEvents as the
fallback; ``CloudTrailPending`` (retried) until the configured wait after the job's end, then ``not_found`` with
the reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flopsmeter.audit.record import CloudTrailRef
from flopsmeter.errors import CloudTrailPending, PermanentError
from flopsmeter.ports import RecordStore, TrailHit
from flopsmeter.service.dependencies import ServiceConfig
from flopsmeter.service.provenance import read_provenance


def captured_or_looked_up(
    store: RecordStore | None,
    arn: str,
    lookup: Callable[[], TrailHit | None],
    call: tuple[str, str],
    ended: datetime,
    now: datetime,
    config: ServiceConfig,
    warnings: list[str],
) -> CloudTrailRef:
    """``call``: (the creating call's name, the job's name), for messages; ``lookup`` asks CloudTrail."""
    event_name, name = call
    captured = read_provenance(store, arn) if store is not None else None
    if captured is not None:
        return CloudTrailRef(status="found", event_id=captured.event_id, event_time=captured.event_time,
                             principal_arn=captured.principal_arn, source_ip=captured.source_ip,
                             user_agent=captured.user_agent, source="provenance")  # fmt: skip
    try:
        hit = lookup()
    except PermanentError as err:  # e.g. AccessDenied: the record is still written, saying why
        warnings.append(f"CloudTrail lookup failed: {err}")
        return CloudTrailRef(status="not_found", reason=f"lookup failed: {str(err)[:300]}")
    if hit is not None:
        return CloudTrailRef(status="found", event_id=hit.event_id, event_time=hit.event_time,
                             principal_arn=hit.principal_arn, source_ip=hit.source_ip, user_agent=hit.user_agent,
                             source=None if store is None else "lookup_events")  # fmt: skip
    waited = (now - ended).total_seconds()
    if waited < config.cloudtrail_max_wait_seconds:
        raise CloudTrailPending(
            f"{event_name} for {name} not in CloudTrail yet ({waited:.0f}s after the job's end; waiting up to "
            f"{config.cloudtrail_max_wait_seconds:.0f}s)"
        )
    reason = f"no {event_name} event for {name} {waited:.0f}s after the job ended"
    warnings.append(f"CloudTrail: {reason}")
    return CloudTrailRef(status="not_found", reason=reason)
