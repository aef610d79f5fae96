"""Load: a burst of training-job events through EventBridge -> SQS -> the real classifier handler, on moto.

    python -m bench.load [--events 2000] [--workers 5] [--batch-size 10] [--seed 7] [--fallback] [--out FILE]

``make bench-load`` runs both deployments below and writes their JSON to ``bench/results/`` (the README's
reliability table quotes those files; ``tests/unit/test_bench_figures.py`` holds it to them).

Two deployments, run separately:

* **as the stack recommends** (default): a trail logs the account's write management events, so every launch call
  reaches the provenance function (``flopsmeter.functions.provenance``) at launch and the classifier reads who
  launched each job by key: no CloudTrail LookupEvents on the hot path (the bench counts them: must be 0);
* **the no-trail fallback** (``--fallback``): no trail, nothing captured; the classifier looks every launch up with
  LookupEvents, paced at its documented 0.4 requests/s per execution environment
  (``flopsmeter.aws.lookup_budget``): 5 environments together stay within CloudTrail's 2 requests/s per account and
  region. The bench measures the LookupEvents rate the emulator saw (busiest 10 s window) against that bound.

What runs (all local, nothing reaches AWS):

* the embedded emulator (moto ``ThreadedMotoServer`` on 127.0.0.1 with ``flopsmeter.local.moto_ext``), provisioned
  like the stack: object-locked audit bucket, classifier queue + DLQ (redrive), the EventBridge rule on SageMaker
  "Training Job State Change" (terminal statuses) -> queue, alert topic, the provenance rule on launch calls and a
  logging trail (stopped for ``--fallback``); the classifier's CloudTrail wait is the stack's default;
* training jobs registered first (CreateTrainingJob over HTTP, so its CloudTrail event is recorded and, with the
  trail logging, put on the bus; then ``set_training_job_state``), and the launch calls captured: the workers hand
  the provenance queue to the real provenance function before the burst (in AWS the capture happens at launch,
  long before a job ends);
* the burst (``bench.load_plan``): terminal state changes, 5 % twice, out-of-order ``InProgress`` events,
  malformed events and events of jobs SageMaker does not know;
* ``--workers`` processes play Lambda's SQS event source mapping (the stack's maximum concurrency, 5): receive up to
  ``--batch-size`` messages, call the real ``flopsmeter.functions.classifier.lambda_handler`` (what
  ``lambdas/classifier/handler.py`` re-exports) with the SQS-shaped event and the stack's environment
  (``LAMBDA_ENV``), delete what did not fail (``batchItemFailures``). The queue's visibility timeout is the
  function's timeout (60 s; the stack sets 6x), so a batch is never delivered twice while it is being handled.

The JSON it prints is checked against the bucket and the DLQ (``bench.load_checks``), not against the workers'
own counts: ``lost`` (terminal jobs without a record, must be 0), ``duplicates_written`` (extra versions or
unexpected records, must be 0), the DLQ by kind against the plan's deliberately bad events (``dlq_expected``), and
a sample of records read back (method, FLOPs, status, and where "who launched" came from). Handler latency is per
invocation (one SQS batch) and includes the emulator's time: every AWS call is an HTTP round trip to moto in
another process on the same cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._harness import (
    emulator,
    emulator_requests,
    function_env,
    lookup_events_times,
    percentile,
    register_jobs,
)
from bench.load_checks import bucket_check, dlq_check, log_counts, lookup_rate
from bench.load_plan import Plan, dead_letters_expected, make_plan
from flopsmeter.aws.lookup_budget import LookupBudget
from flopsmeter.functions.fields import DEFAULT_CLOUDTRAIL_MAX_WAIT_SECONDS
from flopsmeter.local.clients import client
from flopsmeter.local.provision import LocalResources
from flopsmeter.local.runner import LocalLambdaContext, sqs_event

VISIBILITY_TIMEOUT_S = 60  # the classifier's function timeout: no batch outlives its own invisibility
MAX_RECEIVE_COUNT = 3


@dataclass(frozen=True)
class WorkerSetup:
    worker: int
    resources: dict[str, Any]
    env: dict[str, str]
    batch_size: int
    out: str
    capture: bool  # hand the provenance queue to the provenance function first


# ------------------------------------------------------------------------------------------------ workers


def _capture_launches(res: LocalResources) -> int:
    """Play EventBridge's invocation of the provenance function: every queued launch call, until the queue is empty."""
    from flopsmeter.functions.provenance import lambda_handler as provenance

    sqs = client("sqs", res.endpoint, res.region)
    handled = 0
    while batch := sqs.receive_message(QueueUrl=res.provenance_queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            provenance(json.loads(message["Body"]), LocalLambdaContext(region=res.region, account_id=res.account_id))
        sqs.delete_message_batch(
            QueueUrl=res.provenance_queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
        )
        handled += len(batch)
    return handled


def worker_main(setup: WorkerSetup, stop: Any, ready: Any) -> None:
    """One "Lambda container": (capture launch calls,) then receive a batch, invoke the handler, delete what did not
    fail; until told to stop."""
    res = LocalResources.from_dict(setup.resources)
    os.environ.update(setup.env)
    log = Path(setup.out) / f"worker-{setup.worker}.log"
    sys.stdout = log.open("w", encoding="utf-8", buffering=1 << 20)  # Powertools logs + EMF, before its import
    init_start = time.perf_counter()
    from flopsmeter.functions.classifier import lambda_handler

    init_s = time.perf_counter() - init_start
    captured = _capture_launches(res) if setup.capture else 0
    ready.set()
    sqs = client("sqs", res.endpoint, res.region)
    latencies: list[tuple[float, int, int, float]] = []  # (seconds, records, failed, finished at: epoch seconds)
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=res.queue_url, MaxNumberOfMessages=setup.batch_size, WaitTimeSeconds=0, AttributeNames=["All"]
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
    summary = {"worker": setup.worker, "init_s": init_s, "captured": captured, "invocations": latencies}
    (Path(setup.out) / f"worker-{setup.worker}.json").write_text(json.dumps(summary))


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


def _wait_until_drained(url: str, resources: LocalResources, deadline_s: float) -> bool:
    """True once the queue at ``url`` shows nothing waiting and nothing in flight three looks in a row."""
    sqs = client("sqs", resources.endpoint, resources.region)
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < deadline_s:
        quiet = quiet + 1 if _queue_depth(sqs, url) == 0 else 0
        if quiet >= 3:
            return True
        time.sleep(0.5)
    return False


def _start_workers(
    res: LocalResources, workers: int, batch_size: int, out: Path, capture: bool
) -> tuple[Any, list[Any]]:
    """The worker processes, started; returns once each has captured the launch calls (when asked) and polls."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    readies = [ctx.Event() for _ in range(workers)]
    env = function_env(res)
    procs = [
        ctx.Process(
            target=worker_main,
            args=(WorkerSetup(i, asdict(res), env, batch_size, str(out), capture), stop, readies[i]),
            daemon=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    for ready in readies:
        ready.wait()
    return stop, procs


def _without_local_inboxes(res: LocalResources) -> None:
    """Detach the demo's two local-only inboxes (recorded events, alerts), which the stack does not have: nobody
    drains them here, and moto rescans a queue's messages on every send (quadratic over a burst)."""
    from flopsmeter.local.provision import PREFIX

    client("events", res.endpoint, res.region).remove_targets(Rule=f"{PREFIX}-local-recorded", Ids=["queue"])
    sns = client("sns", res.endpoint, res.region)
    for subscription in sns.list_subscriptions_by_topic(TopicArn=res.alert_topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])


def _deployment(fallback: bool, workers: int) -> dict[str, Any]:
    """What was run, and the LookupEvents bound it must keep (the classifier's documented pace x environments)."""
    budget = LookupBudget()
    return {
        "deployment": "no-trail fallback: LookupEvents" if fallback else "as recommended: launch calls captured",
        "lookup_pace_per_environment_per_s": budget.rate_per_second,
        # every environment may spend its burst at once; the pace holds after it
        "lookup_allowed_peak_per_s": round(workers * (budget.rate_per_second + budget.burst / 10.0), 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    wall_start, load_before = time.perf_counter(), os.getloadavg()[0]
    out = Path(tempfile.mkdtemp(prefix="flopsmeter-load-")) if args.logs is None else args.logs
    out.mkdir(parents=True, exist_ok=True)
    provision = {
        "visibility_timeout_seconds": VISIBILITY_TIMEOUT_S,
        "max_receive_count": MAX_RECEIVE_COUNT,
        "cloudtrail_max_wait_seconds": DEFAULT_CLOUDTRAIL_MAX_WAIT_SECONDS,  # the stack's, not the demo's seconds
    }
    with emulator(**provision) as (_, res):
        plan = make_plan(args.events, res, args.seed)
        _without_local_inboxes(res)
        if args.fallback:  # no trail: no launch call reaches EventBridge, nothing is captured
            client("cloudtrail", res.endpoint, res.region).stop_logging(Name=res.trail_name)
        register_jobs(res, plan.jobs)
        setup_s = time.perf_counter() - wall_start
        stop, procs = _start_workers(res, args.workers, args.batch_size, out, capture=not args.fallback)
        captured_all = _wait_until_drained(res.provenance_queue_url, res, 60)
        ready_s = time.perf_counter() - wall_start - setup_s  # workers spawned, imported, launch calls captured
        burst_start, burst_epoch, requests_before = time.perf_counter(), time.time(), emulator_requests()
        _publish(res, plan)
        publish_s = time.perf_counter() - burst_start
        drained = _wait_until_drained(res.queue_url, res, args.deadline)
        processing_s = time.perf_counter() - burst_start
        still_queued = _queue_depth(client("sqs", res.endpoint, res.region), res.queue_url)
        burst_requests = Counter(emulator_requests())
        burst_requests.subtract(requests_before)
        stop.set()
        for proc in procs:
            proc.join(timeout=30)
        bucket = bucket_check(res, plan, "lookup_events" if args.fallback else "provenance")
        dlq = dlq_check(res)
    lookups = lookup_rate(lookup_events_times())
    summaries = [json.loads(p.read_text()) for p in sorted(out.glob("worker-*.json"))]
    invocations = [tuple(i) for s in summaries for i in s["invocations"]]
    logs = log_counts(out)
    # The last invocation that completed a record (any DLQ tail - visibility timeouts x receives - comes after it).
    records_done_s = max((i[3] for i in invocations if i[1] > i[2]), default=burst_epoch) - burst_epoch
    result: dict[str, Any] = {
        **_deployment(args.fallback, args.workers),
        "events": len(plan.bus) + len(plan.direct),
        **plan.counts,
        "launches_captured": sum(s.get("captured", 0) for s in summaries),
        "records_written": bucket["records_in_bucket"] - bucket["duplicates_written"],
        "duplicates_suppressed": logs["duplicates_suppressed"],
        "duplicates_written": bucket["duplicates_written"],
        "lost": bucket["lost"],  # terminal jobs without a record; only final when "drained" is true
        "queue_depth_at_end": still_queued,  # messages not yet processed when the deadline passed (0 if drained)
        "dlq": dlq["dlq"],
        "dlq_expected": sum(dead_letters_expected(plan.counts).values()),
        "dlq_kinds": dlq["dlq_kinds"],
        "dlq_kinds_expected": dead_letters_expected(plan.counts),
        "dlq_copies": dlq["dlq_copies"],
        "records_checked": bucket["records_checked"],
        "records_wrong": bucket["records_wrong"],
        **lookups,
        "emulator_requests_per_record": round(burst_requests.total() / max(1, bucket["records_in_bucket"]), 1),
        "emulator_requests_top": dict(burst_requests.most_common(12)),  # during the burst, by kind
        "handler_log_counts": logs,
        **_latencies(invocations, summaries),
        "records_per_second": round(bucket["records_in_bucket"] / max(1e-9, records_done_s), 1),
        "records_done_s": round(records_done_s, 1),
        "workers_ready_s": round(ready_s, 1),
        "publish_s": round(publish_s, 1),
        "processing_s": round(processing_s, 1),
        "setup_s": round(setup_s, 1),
        "wall_s": round(time.perf_counter() - wall_start, 1),
        "workers": args.workers,
        "batch_size": args.batch_size,
        "drained": drained,
        "cpus": os.cpu_count(),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after: the machine's load
        "emulator": "moto ThreadedMotoServer (in this process) + flopsmeter.local.moto_ext; latency includes it",
    }
    if bucket["lost_jobs"] or bucket["wrong_examples"]:
        result["examples"] = {"lost": bucket["lost_jobs"], "wrong": bucket["wrong_examples"]}
    result["ok"] = _ok(result, captured_all=captured_all, fallback=args.fallback)
    result["logs"] = str(out)
    return result


def _latencies(invocations: list[tuple[Any, ...]], summaries: list[dict[str, Any]]) -> dict[str, Any]:
    latencies_ms = [i[0] * 1000 for i in invocations]
    per_record_ms = [i[0] * 1000 / i[1] for i in invocations]
    return {
        "invocations": len(invocations),
        "records_per_invocation": round(sum(i[1] for i in invocations) / max(1, len(invocations)), 2),
        "handler_p50_ms": _round(percentile(latencies_ms, 50)),
        "handler_p99_ms": _round(percentile(latencies_ms, 99)),
        "per_record_p50_ms": _round(percentile(per_record_ms, 50)),
        "handler_init_s_max": _round(max((s["init_s"] for s in summaries), default=None), 3),
    }


def _ok(result: dict[str, Any], *, captured_all: bool, fallback: bool) -> bool:
    """Nothing lost, nothing written twice, the DLQ exactly the plan's bad events, every sampled record right, and
    LookupEvents as the deployment says: none with capture, within the documented pace without."""
    lookups_ok = (
        result["lookup_events_peak_per_s"] <= result["lookup_allowed_peak_per_s"]
        if fallback
        else result["lookup_events_calls"] == 0 and captured_all
    )
    return bool(
        result["drained"]
        and result["lost"] == 0
        and result["duplicates_written"] == 0
        and result["dlq"] == result["dlq_expected"]
        and result["dlq_kinds"] == {k: v for k, v in result["dlq_kinds_expected"].items() if v}
        and result["records_wrong"] == 0
        and result["handler_log_counts"]["unexpected_errors"] == 0
        and lookups_ok
    )


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events in the burst (default 2000)")
    parser.add_argument("--workers", type=int, default=5, help="handler processes (event source max concurrency)")
    parser.add_argument("--batch-size", type=int, default=10, choices=range(1, 11), metavar="1..10")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fallback", action="store_true", help="no trail: every launch looked up with LookupEvents")
    parser.add_argument("--deadline", type=float, default=3600, help="seconds to wait for the queue to drain")
    parser.add_argument("--logs", type=Path, default=None, help="keep handler logs here (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.events < 20:
        parser.error("--events must be at least 20")
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
