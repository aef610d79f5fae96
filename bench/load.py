"""Load: a burst of training-job events through EventBridge -> SQS -> the real classifier handler, on moto.

    python -m bench.load [--events 10000] [--workers 5] [--batch-size 10] [--seed 7]      (make bench-load)

What runs (all local, nothing reaches AWS):

* the embedded emulator (moto ``ThreadedMotoServer`` on 127.0.0.1 with ``flopsmeter.local.moto_ext``), provisioned
  like the stack: object-locked audit bucket, classifier queue + DLQ (redrive), the EventBridge rule on SageMaker
  "Training Job State Change" (terminal statuses) -> queue, alert topic;
* training jobs registered first (CreateTrainingJob + ``set_training_job_state``; creation times spread over days,
  about 10 % with a metered CumulativeFlops datapoint), a mix of Completed/Failed/Stopped and instance types;
* the burst: one terminal state change per job on the bus (``PutEvents``, 10 a call), 5 % of them put twice, the
  whole burst shuffled; then non-terminal ``InProgress`` events for 2 % of the jobs (out of order: after their
  terminal event) and deliberately bad ones. The stack's rule drops non-terminal statuses, so those are sent
  straight to the queue (as if the rule were widened); unparseable JSON cannot travel through EventBridge either
  and is sent straight to the queue too. Malformed events that do match the rule go through the bus, and so do
  state changes of jobs that SageMaker does not know;
* ``--workers`` processes play Lambda's SQS event source mapping (Lambda scales out up to the SQS event source's
  maximum concurrency, 5 in cdk.json): receive up to ``--batch-size`` messages, call the real
  ``flopsmeter.functions.classifier.lambda_handler`` (what ``lambdas/classifier/handler.py`` re-exports) with
  the SQS-shaped event and the environment the stack sets
  (``LAMBDA_ENV``), delete what did not fail (``batchItemFailures``); failures come back after the visibility
  timeout and SQS's redrive policy moves them to the DLQ after ``maxReceiveCount`` receives.

The JSON it prints is checked against the bucket and the DLQ, not against the workers' own counts: ``lost`` is the
number of terminal jobs without a record under ``records/`` (must be 0), ``duplicates_written`` the number of extra
object versions or unexpected records there (must be 0), ``dlq`` must equal ``dlq_expected`` (the deliberately
bad events), and a sample of records is read back and compared with the expected method and FLOPs.
Handler latency is per invocation (one SQS batch) and includes the emulator's time: every AWS call is an HTTP
round trip to moto in another process on the same cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._harness import JobSpec, emulator, function_env, percentile, register_jobs, sqs_event, state_change_event
from flopsmeter import contract
from flopsmeter.local.clients import client
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.runner import LocalLambdaContext

INSTANCE_MIX = (("ml.g5.xlarge", 1), ("ml.g5.12xlarge", 1), ("ml.p4d.24xlarge", 2), ("ml.p5.48xlarge", 4))
STATUS_MIX = (("Completed", 0.85), ("Failed", 0.10), ("Stopped", 0.05))
DUPLICATE_FRACTION = 0.05
OUT_OF_ORDER_FRACTION = 0.02
METERED_FRACTION = 0.10
VISIBILITY_TIMEOUT_S = 15  # the stack: 6 x 60 s; shorter here so bad messages reach the DLQ within the run
MAX_RECEIVE_COUNT = 3
SAMPLE_CHECK = 200  # records read back and compared with the expected method and FLOPs

# Handler log messages (flopsmeter/functions/classifier.py, flopsmeter/service/classifier.py) counted per outcome.
LOG_OUTCOMES = {
    "job classified": "records_written",
    "duplicate delivery; record already exists": "duplicates_suppressed",
    "non-terminal status; acknowledged and ignored": "non_terminal_ignored",
    "malformed event; will end in the dead-letter queue": "malformed_failures",
    "permanent failure; will end in the dead-letter queue": "permanent_failures",
    "transient failure; the message will be retried": "transient_failures",
    "unexpected error; the message will be retried": "unexpected_errors",
}


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
    ghosts = [JobSpec(name=f"vanished-{run}-{i}") for i in range(vanished)]
    bus = terminal + duplicates + [state_change_event(g, resources) for g in ghosts]
    bus += _bad_bus_entries(resources, malformed_bus)
    rng.shuffle(bus)
    in_progress = [
        _envelope(state_change_event(jobs[i], resources, status="InProgress"), resources)
        for i in rng.sample(range(n_jobs), round(n_jobs * OUT_OF_ORDER_FRACTION))
    ]
    truncated = [
        _envelope(state_change_event(jobs[i % n_jobs], resources), resources)[:57] for i in range(malformed_direct)
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


def _envelope(entry: dict[str, Any], resources: LocalResources) -> str:
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


# ------------------------------------------------------------------------------------------------ workers


def worker_main(
    worker: int, resources: dict[str, Any], env: dict[str, str], batch_size: int, out: str, stop: Any
) -> None:
    """One "Lambda container": receive a batch, invoke the handler, delete what did not fail; until told to stop."""
    res = LocalResources.from_dict(resources)
    os.environ.update(env)
    log = Path(out) / f"worker-{worker}.log"
    sys.stdout = log.open("w", encoding="utf-8", buffering=1 << 20)  # Powertools logs + EMF, before its import
    init_start = time.perf_counter()
    from flopsmeter.functions.classifier import lambda_handler

    init_s = time.perf_counter() - init_start
    sqs = client("sqs", res.endpoint, res.region)
    latencies: list[tuple[float, int, int, float]] = []  # (seconds, records, failed, finished at: epoch seconds)
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=res.queue_url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            time.sleep(0.2)  # short polling (see bench._harness.serialize_emulator_requests)
            continue
        started = time.perf_counter()
        reply = lambda_handler(
            sqs_event(messages, res), LocalLambdaContext(region=res.region, account_id=res.account_id)
        )
        elapsed = time.perf_counter() - started
        failed = {f["itemIdentifier"] for f in reply["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=res.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i : i + 10])],
            )
        latencies.append((elapsed, len(messages), len(failed), time.time()))
    sys.stdout.flush()
    summary = {"worker": worker, "init_s": init_s, "invocations": latencies}
    (Path(out) / f"worker-{worker}.json").write_text(json.dumps(summary))


# ------------------------------------------------------------------------------------------------ the run


def _publish(resources: LocalResources, plan: Plan) -> None:
    events = client("events", resources.endpoint, resources.region)
    sqs = client("sqs", resources.endpoint, resources.region)

    def put(chunk: list[dict[str, Any]]) -> None:
        reply = events.put_events(Entries=chunk)
        if reply.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused {reply['FailedEntryCount']} entries: {reply['Entries']}")

    chunks = [plan.bus[i : i + 10] for i in range(0, len(plan.bus), 10)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, chunks))
    for i in range(0, len(plan.direct), 10):
        sqs.send_message_batch(
            QueueUrl=resources.queue_url,
            Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(plan.direct[i : i + 10])],
        )


def _queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _wait_until_drained(resources: LocalResources, expected_dlq: int, deadline_s: float) -> tuple[bool, float]:
    sqs = client("sqs", resources.endpoint, resources.region)
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < deadline_s:
        if _queue_depth(sqs, resources.queue_url) == 0:
            quiet += 1
            if quiet >= 3:  # three looks in a row: nothing in flight, nothing waiting
                return True, time.monotonic() - start
        else:
            quiet = 0
        time.sleep(0.5)
    return False, time.monotonic() - start


def _bucket_check(resources: LocalResources, plan: Plan) -> dict[str, Any]:
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
    extra_versions = sum(n - 1 for n in versions.values())
    wrong = []
    for name in sorted(set(expected) & set(by_name))[:: max(1, len(expected) // SAMPLE_CHECK)][:SAMPLE_CHECK]:
        job, record = expected[name], store.get_record(by_name[name])
        seconds = int(job.seconds)
        if job.metered_flops is not None:
            want = ("metered", job.metered_flops)
        else:
            want = ("hardware_ceiling", hardware_ceiling(job.instance_type, job.count, seconds).flops)
        got = (record.flops.method, record.flops.classified_flops)
        if got[0] != want[0] or abs(got[1] - want[1]) > 1e-9 * want[1] or record.job.status != job.status:
            wrong.append({"job": name, "want": want, "got": got})
    return {
        "records_in_bucket": len(versions),
        "lost": len(lost),
        "lost_jobs": lost[:10],
        "duplicates_written": extra_versions + len(unexpected),
        "records_checked": min(SAMPLE_CHECK, len(set(expected) & set(by_name))),
        "records_wrong": len(wrong),
        "wrong_examples": wrong[:3],
    }


def _dlq_check(resources: LocalResources) -> dict[str, Any]:
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
            kinds["unknown_job" if isinstance(name, str) and name.startswith("vanished-") else "malformed"] += 1
        except (ValueError, KeyError, AttributeError, TypeError):
            kinds["malformed"] += 1
    return {"dlq": len(bodies), "dlq_kinds": dict(kinds)}


def _log_counts(out: Path) -> dict[str, int]:
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


def run(
    n_events: int, workers: int, batch_size: int, seed: int, deadline_s: float, keep_logs: Path | None
) -> dict[str, Any]:
    wall_start = time.perf_counter()
    out = Path(tempfile.mkdtemp(prefix="flopsmeter-load-")) if keep_logs is None else keep_logs
    out.mkdir(parents=True, exist_ok=True)
    with emulator(visibility_timeout_seconds=VISIBILITY_TIMEOUT_S, max_receive_count=MAX_RECEIVE_COUNT) as (_, res):
        plan = make_plan(n_events, res, seed)
        register_jobs(res, plan.jobs)
        setup_s = time.perf_counter() - wall_start
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        env = function_env(res)
        procs = [
            ctx.Process(target=worker_main, args=(i, asdict(res), env, batch_size, str(out), stop), daemon=True)
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()
        burst_start, burst_epoch = time.perf_counter(), time.time()
        _publish(res, plan)
        publish_s = time.perf_counter() - burst_start
        dlq_expected = (
            plan.counts["malformed_via_bus"] + plan.counts["malformed_direct"] + plan.counts["unknown_job_events"]
        )
        drained, _ = _wait_until_drained(res, dlq_expected, deadline_s)
        processing_s = time.perf_counter() - burst_start
        still_queued = _queue_depth(client("sqs", res.endpoint, res.region), res.queue_url)
        stop.set()
        for proc in procs:
            proc.join(timeout=30)
        bucket = _bucket_check(res, plan)
        dlq = _dlq_check(res)
    summaries = [json.loads(p.read_text()) for p in sorted(out.glob("worker-*.json"))]
    invocations = [tuple(i) for s in summaries for i in s["invocations"]]
    latencies_ms = [i[0] * 1000 for i in invocations]
    per_record_ms = [i[0] * 1000 / i[1] for i in invocations]
    logs = _log_counts(out)
    # The last invocation that completed a record (the DLQ tail - visibility timeouts x receives - comes after it).
    records_done_s = max((i[3] for i in invocations if i[1] > i[2]), default=burst_epoch) - burst_epoch
    result: dict[str, Any] = {
        "events": len(plan.bus) + len(plan.direct),
        **plan.counts,
        "records_written": bucket["records_in_bucket"] - bucket["duplicates_written"],
        "duplicates_suppressed": logs["duplicates_suppressed"],
        "duplicates_written": bucket["duplicates_written"],
        "lost": bucket["lost"],  # terminal jobs without a record; only final when "drained" is true
        "queue_depth_at_end": still_queued,  # messages not yet processed when the deadline passed (0 if drained)
        "dlq": dlq["dlq"],
        "dlq_expected": dlq_expected,
        "dlq_kinds": dlq["dlq_kinds"],
        "records_checked": bucket["records_checked"],
        "records_wrong": bucket["records_wrong"],
        "handler_log_counts": logs,
        "invocations": len(invocations),
        "records_per_invocation": round(sum(i[1] for i in invocations) / max(1, len(invocations)), 2),
        "handler_p50_ms": _round(percentile(latencies_ms, 50)),
        "handler_p99_ms": _round(percentile(latencies_ms, 99)),
        "per_record_p50_ms": _round(percentile(per_record_ms, 50)),
        "handler_init_s_max": _round(max((s["init_s"] for s in summaries), default=None), 3),
        "records_per_second": round(bucket["records_in_bucket"] / max(1e-9, records_done_s), 1),
        "records_done_s": round(records_done_s, 1),
        "publish_s": round(publish_s, 1),
        "processing_s": round(processing_s, 1),
        "setup_s": round(setup_s, 1),
        "wall_s": round(time.perf_counter() - wall_start, 1),
        "workers": workers,
        "batch_size": batch_size,
        "drained": drained,
        "cpus": os.cpu_count(),
        "emulator": "moto ThreadedMotoServer (in this process) + flopsmeter.local.moto_ext; latency includes it",
    }
    if bucket["lost_jobs"] or bucket["wrong_examples"]:
        result["examples"] = {"lost": bucket["lost_jobs"], "wrong": bucket["wrong_examples"]}
    result["ok"] = bool(
        drained
        and result["lost"] == 0
        and result["duplicates_written"] == 0
        and result["dlq"] == dlq_expected
        and result["records_wrong"] == 0
        and logs["unexpected_errors"] == 0
    )
    result["logs"] = str(out)
    return result


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events in the burst (default 10000)")
    parser.add_argument("--workers", type=int, default=5, help="handler processes (event source max concurrency)")
    parser.add_argument("--batch-size", type=int, default=10, choices=range(1, 11), metavar="1..10")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--deadline", type=float, default=3600, help="seconds to wait for the queue to drain")
    parser.add_argument("--logs", type=Path, default=None, help="keep handler logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.events < 20:
        parser.error("--events must be at least 20")
    result = run(args.events, args.workers, args.batch_size, args.seed, args.deadline, args.logs)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
