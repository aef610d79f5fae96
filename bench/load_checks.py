"""What ``bench.load`` checks at the end, against the emulator's state rather than the workers' own counts.

* ``bucket_check``: every terminal job has exactly one record under ``records/`` (``lost``, ``duplicates_written``),
  and a sample read back has the expected method, FLOPs, status and launch source (``provenance`` when the launch
  calls were captured, ``lookup_events`` for the no-trail fallback);
* ``dlq_check``: the dead-letter queue, by kind (malformed / unknown job), and how many letters are copies of an
  event already dead-lettered (a message redelivered while its first delivery was still being handled);
* ``log_counts``: the handler's log lines per outcome;
* ``lookup_rate``: LookupEvents calls as the emulator received them, and the busiest window's rate.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.load_plan import UNKNOWN_JOB_PREFIX, Plan
from flopsmeter.local.clients import client
from flopsmeter.local.provision import LocalResources

SAMPLE_CHECK = 200  # records read back and compared with the expected method and FLOPs
RATE_WINDOW_S = 10.0  # LookupEvents calls are counted over sliding windows of this length

# Handler log messages (flopsmeter/functions/classifier.py, flopsmeter/service/classifier.py) counted per outcome.
LOG_OUTCOMES = {
    "job classified": "records_written",
    "duplicate delivery; record already exists": "duplicates_suppressed",
    "non-terminal status; acknowledged and ignored": "non_terminal_ignored",
    "malformed event; will end in the dead-letter queue": "malformed_failures",
    "permanent failure; will end in the dead-letter queue": "permanent_failures",
    "transient failure; the message will be retried": "transient_failures",
    "unexpected error; the message will be retried": "unexpected_errors",
    "provenance captured": "launches_captured",
}


def bucket_check(resources: LocalResources, plan: Plan, launch_source: str) -> dict[str, Any]:
    from flopsmeter.audit.keys import RECORDS_PREFIX
    from flopsmeter.aws.store import AuditStore
    from flopsmeter.domain.hardware import hardware_ceiling

    store = AuditStore(client("s3", resources.endpoint, resources.region), resources.audit_bucket)
    versions: Counter[str] = Counter()
    for version in store.list_versions(RECORDS_PREFIX):
        versions[version["Key"]] += 1
    by_name = {key.rsplit("/", 1)[-1].removesuffix(".json"): key for key in versions}
    expected = {job.name: job for job in plan.jobs}
    lost = sorted(set(expected) - set(by_name))
    unexpected = sorted(set(by_name) - set(expected))
    wrong = []
    sample = sorted(set(expected) & set(by_name))[:: max(1, len(expected) // SAMPLE_CHECK)][:SAMPLE_CHECK]
    for name in sample:
        job, record = expected[name], store.get_record(by_name[name])
        if job.metered_flops is not None:
            want = ("metered", job.metered_flops, launch_source)
        else:
            want = (
                "hardware_ceiling",
                hardware_ceiling(job.instance_type, job.count, int(job.seconds)).flops,
                launch_source,
            )
        got = (record.flops.method, record.flops.classified_flops, record.cloudtrail.source)
        if (
            got[0] != want[0]
            or abs(got[1] - want[1]) > 1e-9 * want[1]
            or got[2] != want[2]
            or record.job.status != job.status
        ):
            wrong.append({"job": name, "want": want, "got": got})
    return {
        "records_in_bucket": len(versions),
        "lost": len(lost),
        "lost_jobs": lost[:10],
        "duplicates_written": sum(n - 1 for n in versions.values()) + len(unexpected),
        "records_checked": len(sample),
        "records_wrong": len(wrong),
        "wrong_examples": wrong[:3],
    }


def dlq_check(resources: LocalResources) -> dict[str, Any]:
    """Drain the DLQ: letters by kind, and copies (a second letter for an event id already seen)."""
    sqs = client("sqs", resources.endpoint, resources.region)
    bodies = []
    while batch := sqs.receive_message(QueueUrl=resources.dlq_url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [m["Body"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=resources.dlq_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
        )
    kinds: Counter[str] = Counter()
    for body in bodies:
        try:
            name = json.loads(body)["detail"].get("TrainingJobName")
            unknown = isinstance(name, str) and name.startswith(UNKNOWN_JOB_PREFIX)
        except (ValueError, KeyError, AttributeError, TypeError):
            unknown = False
        kinds["unknown_job" if unknown else "malformed"] += 1
    return {"dlq": len(bodies), "dlq_kinds": dict(kinds), "dlq_copies": len(bodies) - len(set(bodies))}


def log_counts(out: Path) -> dict[str, int]:
    counts = dict.fromkeys(LOG_OUTCOMES.values(), 0)
    for log in out.glob("worker-*.log"):
        with log.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.startswith('{"level"'):
                    continue
                message = json.loads(line).get("message")
                if message in LOG_OUTCOMES:
                    counts[LOG_OUTCOMES[message]] += 1
    return counts


def lookup_rate(times: Sequence[float]) -> dict[str, Any]:
    """LookupEvents calls the emulator answered, their mean rate, and the busiest ``RATE_WINDOW_S`` window's rate."""
    ordered = sorted(times)
    busiest, first = 0, 0
    for last, stamp in enumerate(ordered):
        while stamp - ordered[first] > RATE_WINDOW_S:
            first += 1
        busiest = max(busiest, last - first + 1)
    span = ordered[-1] - ordered[0] if len(ordered) > 1 else 0.0
    return {
        "lookup_events_calls": len(ordered),
        "lookup_events_mean_per_s": round(len(ordered) / span, 2) if span else None,
        "lookup_events_peak_per_s": round(busiest / RATE_WINDOW_S, 2),
    }
