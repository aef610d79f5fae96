"""Where the meter's totals go: stdout lines, ``flops_meter.json`` and CloudWatch.

None of them may crash training: each failure is logged (stdlib ``logging``) and counted. boto3 is imported
only when the CloudWatch emitter starts, so the meter runs in containers without it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from flopsmeter import contract
from flopsmeter.aws.codes import NOT_AUTHORISED_CODES

logger = logging.getLogger("flopsmeter.training")

LINE_PREFIX = "flopsmeter:"

# SageMaker MetricDefinitions for the stdout lines (documented in docs/training.md and tested against the
# real output). SageMaker takes the first capture group of each regex as the metric value.
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"Name": "flopsmeter:cumulative_flops", "Regex": r"flopsmeter: .*cumulative_flops=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:tokens", "Regex": r"flopsmeter: .* tokens=([0-9]+)"},
    {"Name": "flopsmeter:non_padding_tokens", "Regex": r"flopsmeter: .*non_padding_tokens=([0-9]+)"},
    {"Name": "flopsmeter:flops_per_token", "Regex": r"flopsmeter: .*flops_per_token=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:ceiling_ratio", "Regex": r"flopsmeter: .*ceiling_ratio=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:threshold_ratio", "Regex": r"flopsmeter: .*threshold_ratio=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:meter_incomplete", "Regex": r"flopsmeter: .*meter_incomplete=([01])"},
    {"Name": "flopsmeter:update_flops", "Regex": r"flopsmeter: .*update_flops=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:reference_flops", "Regex": r"flopsmeter: .*reference_flops=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:generation_flops", "Regex": r"flopsmeter: .*generation_flops=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:reward_inference_flops", "Regex": r"flopsmeter: .*reward_inference_flops=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:recompute_flops", "Regex": r"flopsmeter: .*recompute_flops=([0-9.eE+-]+)"},
    {"Name": "flopsmeter:measured_flops", "Regex": r"flopsmeter: .* measured_flops=([0-9.eE+-]+)"},
    {
        "Name": "flopsmeter:measured_closed_form_flops",
        "Regex": r"flopsmeter: .*measured_closed_form_flops=([0-9.eE+-]+)",
    },
)
BREAKDOWN_METRICS = (  # (Snapshot field, CloudWatch metric): sent when more than update was counted
    ("update_flops", contract.METRIC_UPDATE_FLOPS),
    ("reference_flops", contract.METRIC_REFERENCE_FLOPS),
    ("generation_flops", contract.METRIC_GENERATION_FLOPS),
    ("reward_inference_flops", contract.METRIC_REWARD_INFERENCE_FLOPS),
)
NOTICE_PREFIX = "flopsmeter [{level}]"  # human notices: never "flopsmeter: ", so no MetricDefinition matches them


@dataclass(frozen=True)
class Snapshot:
    """What every emitter gets at an emission point (global totals, already summed over ranks)."""

    step: int
    cumulative_flops: float
    tokens: int
    non_padding_tokens: int
    recompute_flops: float
    flops_per_token: float
    ceiling_ratio: float | None
    threshold_ratio: float | None
    status: str
    incomplete: bool = False  # the meter knows the totals miss part of the job (MeterIncomplete = 1)
    estimated_flops: float = 0.0  # extrapolated FLOPs of steps never metered, included in cumulative_flops
    unmetered: bool = False  # the meter could not meter this job at all: no FLOPs are reported
    update_flops: float = 0.0  # the breakdown of cumulative_flops (estimated_flops apart)
    reference_flops: float = 0.0
    generation_flops: float = 0.0
    reward_inference_flops: float = 0.0
    # measured mode: FlopCounterMode's figure and the closed form's over the measured windows, when one fell outside
    # the tolerance (0: none did)
    measured_flops: float = 0.0
    measured_closed_form_flops: float = 0.0


def format_line(snap: Snapshot) -> str:
    """One stdout line; every field is ``name=value`` with a plain number, so the regexes above match."""
    if snap.unmetered:  # no FLOPs or tokens at all: a zero would read as a measurement
        return f"{LINE_PREFIX} step={snap.step} meter_incomplete=1 status={snap.status}"
    parts = [
        LINE_PREFIX,
        f"step={snap.step}",
        f"cumulative_flops={snap.cumulative_flops:.9e}",
        f"tokens={snap.tokens}",
        f"non_padding_tokens={snap.non_padding_tokens}",
        f"flops_per_token={snap.flops_per_token:.6e}",
        f"recompute_flops={snap.recompute_flops:.6e}",
        *(f"{field}={getattr(snap, field):.6e}" for field, _ in BREAKDOWN_METRICS),
    ]
    if snap.ceiling_ratio is not None and math.isfinite(snap.ceiling_ratio):
        parts.append(f"ceiling_ratio={snap.ceiling_ratio:.6e}")
    if snap.threshold_ratio is not None and math.isfinite(snap.threshold_ratio):
        parts.append(f"threshold_ratio={snap.threshold_ratio:.6e}")
    if snap.measured_flops:
        parts.append(f"measured_flops={snap.measured_flops:.6e}")
        parts.append(f"measured_closed_form_flops={snap.measured_closed_form_flops:.6e}")
    parts.append(f"meter_incomplete={int(snap.incomplete)}")
    if snap.incomplete:
        parts.append(f"estimated_flops={snap.estimated_flops:.6e}")
    parts.append(f"status={snap.status}")
    return " ".join(parts)


class StdoutEmitter:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def emit(self, snap: Snapshot) -> None:
        stream = self._stream or sys.stdout
        try:
            stream.write(format_line(snap) + "\n")
            stream.flush()
        except (OSError, ValueError) as err:  # closed or broken stdout must not stop training
            logger.warning("stdout metric line not written: %s", err)

    def write_line(self, line: str) -> None:
        """One ready-made ``flopsmeter:`` line (the crossing alert, ``training.crossing``)."""
        stream = self._stream or sys.stdout
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError) as err:
            logger.warning("stdout line not written: %s", err)

    def status_line(self, fields: str) -> None:
        """A ``flopsmeter:`` line with fields no MetricDefinition reads (``cloudwatch_failed=1 ...``)."""
        self.write_line(f"{LINE_PREFIX} {fields}")

    def notice(self, level: str, message: str) -> None:
        """A line for the person reading the job's log (``flopsmeter [ERROR] ...``), not for MetricDefinitions."""
        stream = self._stream or sys.stdout
        try:
            stream.write(f"{NOTICE_PREFIX.format(level=level)} {message}\n")
            stream.flush()
        except (OSError, ValueError) as err:
            logger.warning("stdout notice not written: %s", err)


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON to ``path`` through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2, sort_keys=True, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileEmitter:
    """Keeps ``flops_meter.json`` current: rewritten at every emission, so even a killed job leaves its last totals."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failures = 0

    def write(self, document: Mapping[str, Any]) -> bool:
        try:
            write_json_atomic(self.path, document)
        except (OSError, TypeError, ValueError) as err:
            self.failures += 1
            logger.warning("flops_meter.json not written to %s: %s", self.path, err)
            return False
        return True


def metric_data(snap: Snapshot, job_name: str) -> list[dict[str, Any]]:
    """The CloudWatch datums for one snapshot (namespace, names and dimension from flopsmeter.contract).

    ``MeterIncomplete`` = 1 is sent only when the totals are known to be incomplete (the classifier then uses the
    hardware ceiling); an unmetered job sends nothing else, so no FLOPs figure can be mistaken for a measurement.
    """
    now = datetime.now(UTC)
    dims = [{"Name": contract.METRIC_DIMENSION, "Value": job_name}]
    if snap.unmetered:
        return [_datum(contract.METRIC_METER_INCOMPLETE, 1.0, dims, now)]
    values: list[tuple[str, float]] = [
        (contract.METRIC_CUMULATIVE_FLOPS, snap.cumulative_flops),
        (contract.METRIC_CUMULATIVE_TOKENS, float(snap.tokens)),
        (contract.METRIC_CUMULATIVE_NON_PADDING_TOKENS, float(snap.non_padding_tokens)),
        (contract.METRIC_RECOMPUTE_FLOPS, snap.recompute_flops),
        (contract.METRIC_FLOPS_PER_TOKEN, snap.flops_per_token),
    ]
    if snap.ceiling_ratio is not None and math.isfinite(snap.ceiling_ratio):
        values.append((contract.METRIC_CEILING_RATIO, snap.ceiling_ratio))
    if snap.reference_flops or snap.generation_flops or snap.reward_inference_flops:  # else update = cumulative
        values.extend((name, getattr(snap, field)) for field, name in BREAKDOWN_METRICS)
    if snap.measured_flops:
        values.append((contract.METRIC_MEASURED_FLOPS, snap.measured_flops))
        values.append((contract.METRIC_MEASURED_CLOSED_FORM_FLOPS, snap.measured_closed_form_flops))
    if snap.incomplete:
        values.append((contract.METRIC_METER_INCOMPLETE, 1.0))
    return [_datum(name, value, dims, now) for name, value in values]


def _datum(name: str, value: float, dims: list[dict[str, str]], now: datetime) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dims, "Value": value, "Unit": "Count", "Timestamp": now}


def _default_client_factory(region: str | None, endpoint_url: str | None) -> Any:
    import boto3  # lazy: the training container may not have it
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10)
    return boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint_url, config=config)


class CloudWatchEmitter:
    """Sends snapshots from one background thread, in order, with retries; training never waits on the network.

    ``close`` waits (bounded) for what is queued. A failed datum is retried ``attempts`` times with backoff and
    then logged and counted, never raised.
    """

    def __init__(
        self,
        job_name: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        attempts: int = 4,
        backoff_s: float = 0.5,
        client_factory: Callable[[str | None, str | None], Any] = _default_client_factory,
    ) -> None:
        self.job_name = job_name
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.sent = 0
        self.failures = 0
        self._factory = client_factory
        self._region = region
        self._endpoint_url = endpoint_url
        self._client: Any = None
        self._queue: queue.Queue[Snapshot | list[dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.on_failure: Callable[[str], None] | None = None  # called once per kind of error (the meter says so)
        self._reported: set[str] = set()

    @staticmethod
    def available() -> bool:
        try:
            import boto3  # noqa: F401
        except ImportError:
            return False
        return True

    def emit(self, snap: Snapshot) -> None:
        self._enqueue(snap)

    def emit_data(self, data: list[dict[str, Any]]) -> None:
        """Ready-made datums (the crossing alert, ``training.crossing``), sent in order with the snapshots."""
        self._enqueue(data)

    def _enqueue(self, item: Snapshot | list[dict[str, Any]]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="flopsmeter-cloudwatch", daemon=True)
                self._thread.start()
        self._queue.put(item)

    def close(self, timeout_s: float = 30.0) -> None:
        with self._lock:
            thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout_s)
        if thread.is_alive():
            logger.warning("cloudwatch emitter still busy at close (%d snapshots pending)", self._queue.qsize())
        with self._lock:
            self._thread = None

    def _run(self) -> None:
        while True:
            snap = self._queue.get()
            if snap is None:
                return
            self._send(snap)

    def _send(self, item: Snapshot | list[dict[str, Any]]) -> None:
        snap = item if isinstance(item, Snapshot) else None
        data = metric_data(snap, self.job_name) if snap is not None else item
        for attempt in range(1, self.attempts + 1):
            try:
                if self._client is None:
                    self._client = self._factory(self._region, self._endpoint_url)
                self._client.put_metric_data(Namespace=contract.METRICS_NAMESPACE, MetricData=data)
            except Exception as err:  # any failure (import, credentials, throttling) is logged
                if attempt == self.attempts or _permanent(err):
                    self.failures += 1
                    logger.warning("cloudwatch put_metric_data failed at step %s after %d attempts: %s: %s",
                                   snap.step if snap else "crossing", attempt, type(err).__name__, err)  # fmt: skip
                    self._report(err)
                    return
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            else:
                self.sent += 1
                return

    def _report(self, err: Exception) -> None:
        self.last_error = describe_error(err)
        kind = self.last_error.split(":", 1)[0]
        if kind not in self._reported and self.on_failure is not None:
            self._reported.add(kind)
            self.on_failure(self.last_error)


_PERMANENT = ("NoCredentialsError", "NoRegionError", "PartialCredentialsError")


def _error_code(err: Exception) -> str:
    response = getattr(err, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return str(code or type(err).__name__)


def _permanent(err: Exception) -> bool:
    """Retrying cannot help: no credentials, no region, access denied."""
    return type(err).__name__ in _PERMANENT or _error_code(err) in NOT_AUTHORISED_CODES


def describe_error(err: Exception) -> str:
    """``Kind: what it means`` for a failed CloudWatch write."""
    name, code = type(err).__name__, _error_code(err)
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return f"{name}: no AWS credentials in the job (the execution role, or AWS_* variables)"
    if name == "NoRegionError":
        return f"{name}: no AWS region (set AWS_REGION / AWS_DEFAULT_REGION)"
    if code in NOT_AUTHORISED_CODES:
        return f"{code}: the job's role may not call cloudwatch:PutMetricData"
    return f"{code}: {str(err)[:200]}"


def cloudwatch_for(
    wanted: bool | None, job_name: str | None, is_main: bool, warnings: list[str]
) -> CloudWatchEmitter | None:
    """The CloudWatch emitter rank 0 uses, or None (why goes into ``warnings``): ``wanted`` None means "if possible"."""
    if wanted is False or not is_main:
        return None
    if not job_name:
        if wanted:
            warnings.append("CloudWatch emission off: no training job name (TRAINING_JOB_NAME unset)")
        return None
    if not CloudWatchEmitter.available():
        warnings.append("CloudWatch emission off: boto3 is not installed in this environment")
        return None
    return CloudWatchEmitter(job_name)


def failure_reporter(
    stdout: StdoutEmitter | None, warnings: list[str], step: Callable[[], int]
) -> Callable[[str], None]:
    """What the meter does when CloudWatch writes fail: a warning for ``flops_meter.json`` and a ``flopsmeter:``
    line on stdout (the totals are still in both)."""

    def report(error: str) -> None:
        warnings.append(
            f"CloudWatch writes failed ({error}); the totals are in this file and the stdout metric lines "
            "(SageMaker keeps them as FinalMetricDataList); without either the classifier uses the hardware ceiling"
        )
        if stdout is not None:
            stdout.status_line(f"cloudwatch_failed=1 error={error.split(':', 1)[0]} step={step()}")

    return report
