"""The burst ``bench.load`` puts through the service: which jobs exist, which events go on the bus, which straight to
the queue, and how many of each kind (``Plan.counts``; ``bench.load_checks`` holds the result against it).

* one terminal state change per job (Completed/Failed/Stopped, g5/p4d/p5, ~10 % metered), 5 % of them put twice,
  the whole burst shuffled;
* ``InProgress`` events for 2 % of the jobs, after their terminal one (out of order), straight to the queue (the
  stack's rule drops non-terminal statuses);
* malformed events that match the rule (through the bus), unparseable bodies (straight to the queue), and state
  changes of jobs SageMaker does not know (through the bus): the deliberately bad events, each of which must end in
  the dead-letter queue exactly once.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._harness import JobSpec, state_change_event
from flopsmeter import contract
from flopsmeter.local.provision import LocalResources

INSTANCE_MIX = (("ml.g5.xlarge", 1), ("ml.g5.12xlarge", 1), ("ml.p4d.24xlarge", 2), ("ml.p5.48xlarge", 4))
STATUS_MIX = (("Completed", 0.85), ("Failed", 0.10), ("Stopped", 0.05))
DUPLICATE_FRACTION = 0.05
OUT_OF_ORDER_FRACTION = 0.02
METERED_FRACTION = 0.10
UNKNOWN_JOB_PREFIX = "vanished-"  # the jobs SageMaker does not know


@dataclass
class Plan:
    jobs: list[JobSpec]
    bus: list[dict[str, Any]]  # PutEvents entries, in the order they are put
    direct: list[str]  # SQS bodies sent straight to the queue, after the bus burst
    counts: dict[str, int] = field(default_factory=dict)


def _bad_bus_entries(resources: LocalResources, count: int) -> list[dict[str, Any]]:
    """Events that match the stack's rule (source, detail-type, terminal status) but are not readable events."""
    arn = f"arn:aws:sagemaker:{resources.region}:{resources.account_id}:training-job/"
    details = [
        {"TrainingJobName": "../../etc/passwd", "TrainingJobStatus": "Completed"},
        {"TrainingJobName": "job; rm -rf /", "TrainingJobStatus": "Failed"},
        {"TrainingJobName": 12345, "TrainingJobStatus": "Completed"},
        {"TrainingJobName": "x" * 10_000, "TrainingJobStatus": "Stopped"},
        {"TrainingJobName": "bad-arn", "TrainingJobArn": "arn:aws:s3:::bucket", "TrainingJobStatus": "Completed"},
        {"TrainingJobName": "bad-time", "TrainingJobStatus": "Completed", "TrainingEndTime": "yesterday-ish"},
        {"TrainingJobStatus": "Completed", "TrainingJobArn": arn + "nameless"},
    ]
    return [
        {
            "Source": contract.SAGEMAKER_EVENT_SOURCE,
            "DetailType": contract.TRAINING_JOB_STATE_CHANGE,
            "Detail": json.dumps(details[i % len(details)]),
        }
        for i in range(count)
    ]


def make_plan(n_events: int, resources: LocalResources, seed: int) -> Plan:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)

    def minutes(low: float, high: float) -> timedelta:  # whole seconds, as SageMaker reports them
        return timedelta(seconds=round(rng.uniform(low, high) * 60))

    malformed_bus = max(3, round(n_events * 0.001))
    malformed_direct = max(2, round(n_events * 0.0005))
    vanished = max(1, round(n_events * 0.0002))
    bad = malformed_bus + malformed_direct + vanished
    n_jobs = max(1, int((n_events - bad) / (1 + DUPLICATE_FRACTION + OUT_OF_ORDER_FRACTION)))
    run = uuid.uuid4().hex[:6]
    jobs = []
    for i in range(n_jobs):
        instance_type, count = rng.choice(INSTANCE_MIX)
        status = rng.choices([s for s, _ in STATUS_MIX], [w for _, w in STATUS_MIX])[0]
        end = now - minutes(5, 60)
        start = end - minutes(12, 48 * 60)
        created = start - minutes(1, 7 * 24 * 60)
        metered = rng.uniform(1e18, 5e21) if rng.random() < METERED_FRACTION else None
        jobs.append(
            JobSpec(
                name=f"load-{run}-{i:06d}",
                status=status,
                instance_type=instance_type,
                count=count,
                created=created,
                start=start,
                end=end,
                environment={"PRETRAIN_FLOPS": "1.5e24"} if i % 3 == 0 else {},
                metered_flops=metered,
            )
        )
    terminal = [state_change_event(j, resources) for j in jobs]
    duplicates = [terminal[i] for i in rng.sample(range(n_jobs), round(n_jobs * DUPLICATE_FRACTION))]
    ghosts = [JobSpec(name=f"{UNKNOWN_JOB_PREFIX}{run}-{i}") for i in range(vanished)]
    bus = terminal + duplicates + [state_change_event(g, resources) for g in ghosts]
    bus += _bad_bus_entries(resources, malformed_bus)
    rng.shuffle(bus)
    in_progress = [
        envelope(state_change_event(jobs[i], resources, status="InProgress"), resources)
        for i in rng.sample(range(n_jobs), round(n_jobs * OUT_OF_ORDER_FRACTION))
    ]
    truncated = [
        envelope(state_change_event(jobs[i % n_jobs], resources), resources)[:57] for i in range(malformed_direct)
    ]
    direct = in_progress + truncated
    rng.shuffle(direct)
    counts = {
        "jobs": n_jobs,
        "terminal_events": n_jobs,
        "duplicate_events": len(duplicates),
        "out_of_order_in_progress": len(in_progress),
        "malformed_via_bus": malformed_bus,
        "malformed_direct": malformed_direct,
        "unknown_job_events": vanished,
    }
    return Plan(jobs, bus, direct, counts)


def envelope(entry: dict[str, Any], resources: LocalResources) -> str:
    """The SQS body EventBridge would deliver for a PutEvents entry (for messages sent straight to the queue)."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": resources.account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": resources.region,
            "resources": entry.get("Resources", []),
            "detail": json.loads(entry["Detail"]),
        }
    )


def dead_letters_expected(counts: dict[str, int]) -> dict[str, int]:
    """What the dead-letter queue must hold at the end, by kind: every deliberately bad event, once."""
    return {
        "malformed": counts["malformed_via_bus"] + counts["malformed_direct"],
        "unknown_job": counts["unknown_job_events"],
    }
