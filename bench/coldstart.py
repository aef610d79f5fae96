"""Cold start of the classifier as packaged: init time and handler latency in a fresh interpreter, as JSON.

    python bench/coldstart.py [--runs 5] [--invocations 40]      (make bench-coldstart)

What is measured, and how it matches Lambda:

* the code asset is staged by ``infra.assets.stage_lambda_asset`` (``lambdas/`` + ``flopsmeter/`` without
  ``training/`` and ``local/``), into ``.local/bench/coldstart/asset``;
* the Powertools layer's packages (``aws-lambda-powertools[tracer]`` + ``pydantic``, the versions in this venv) are
  ``pip install --target``-ed once into ``.local/layer/python`` and boto3 (the runtime's, same version as the venv)
  into ``.local/layer/runtime``;
* each run is a fresh ``python -I -S`` (no site-packages, no PYTHON* variables) whose ``sys.path`` is only
  asset + layer + runtime + the standard library, like ``/var/task``, ``/opt/python`` and the runtime's boto3;
* ``init_ms``: ``import lambdas.classifier.handler`` (Lambda's INIT phase runs the module's top level);
  ``first_invoke_ms``: the first invocation, which also validates the settings and creates the six boto3 clients;
  then ``--invocations`` warm invocations, each an SQS batch of one terminal event for a job of its own, against
  the local emulator (moto on 127.0.0.1, in this process).
* emulator time is excluded by timing every HTTP round trip inside botocore (``Endpoint._send``) and subtracting
  it: ``warm_p50_ms`` is the handler's own time, ``warm_wall_p50_ms`` includes the emulator; a no-op call
  (STS GetCallerIdentity) gives the round-trip floor.

Not the same as Lambda: the interpreter is this venv's CPython (Lambda: 3.14 on arm64), the machine is shared, and
active X-Ray tracing is off (Powertools' Tracer disables itself outside Lambda): ``xray_import_ms`` is the extra
import that active tracing costs at init.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._harness import JobSpec, emulator, function_env, percentile, register_jobs, state_change_event
from flopsmeter.local.runner import sqs_event

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / ".local" / "layer"
ASSET = REPO / ".local" / "bench" / "coldstart" / "asset"
INIT_TARGET_MS = 800
WARM_P50_TARGET_MS = 50
BREAKDOWN_PACKAGES = frozenset(
    {
        "lambdas.classifier.handler",  # everything below is inside this one
        "flopsmeter.functions.observability",  # Logger, Metrics, Tracer
        "aws_xray_sdk.core",  # imported by Powertools' Tracer
        "aws_lambda_powertools.utilities.batch",
        "aws_lambda_powertools.utilities.parser",
        "pydantic",
        "flopsmeter.service.classifier",
        "boto3",
    }
)
LAYER_PACKAGES = ("aws-lambda-powertools[tracer]", "pydantic")
RUNTIME_PACKAGES = ("boto3",)

# Runs in the fresh interpreter. argv: sys.path entries (JSON), the events file, the result file.
CHILD = r"""
import json, sys, time
t_start = time.perf_counter()
paths, events_file, result_file = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path[:0] = paths
t0 = time.perf_counter()
import lambdas.classifier.handler as handler_module
init_s = time.perf_counter() - t0
import botocore.endpoint
http = {"s": 0.0, "calls": 0}
_send = botocore.endpoint.Endpoint._send
def timed_send(self, request):
    started = time.perf_counter()
    try:
        return _send(self, request)
    finally:
        http["s"] += time.perf_counter() - started
        http["calls"] += 1
botocore.endpoint.Endpoint._send = timed_send
class Context:
    function_name = "flopsmeter-classifier"; function_version = "$LATEST"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:flopsmeter-classifier"
    aws_request_id = "coldstart"; log_group_name = "/aws/lambda/flopsmeter-classifier"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self): return 60000
invocations = []
for event in json.load(open(events_file)):
    http["s"], http["calls"] = 0.0, 0
    started = time.perf_counter()
    reply = handler_module.lambda_handler(event, Context())
    wall = time.perf_counter() - started
    failed = len(reply["batchItemFailures"])
    invocations.append({"wall_s": wall, "http_s": http["s"], "calls": http["calls"], "failed": failed})
import boto3
sts = boto3.session.Session().client("sts")
sts.get_caller_identity()
noop = []
for _ in range(20):
    started = time.perf_counter(); sts.get_caller_identity(); noop.append(time.perf_counter() - started)
modules = sorted({m.split(".")[0] for m in sys.modules})
json.dump({"init_s": init_s, "invocations": invocations, "noop_s": noop,
           "boto3_file": boto3.__file__, "pydantic_file": __import__("pydantic").__file__,
           "handler_file": handler_module.__file__, "top_level_modules": modules}, open(result_file, "w"))
"""


def _installed(package: str) -> str:
    return importlib.metadata.version(package.split("[")[0])


def ensure_layer() -> tuple[Path, Path]:
    """Install the layer's and the runtime's packages once (pinned to this venv's versions); reuse afterwards."""
    wanted = {"python": LAYER_PACKAGES, "runtime": RUNTIME_PACKAGES}
    dirs = []
    for name, packages in wanted.items():
        target = LAYER / name
        pins = [f"{p}=={_installed(p)}" for p in packages]
        stamp = target / ".flopsmeter-pins"
        if not (stamp.is_file() and stamp.read_text() == "\n".join(pins)):
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
                + ["--upgrade", "--target", str(target), *pins],
                check=True,
            )
            # Lambda's /opt is read-only: a layer without .pyc files is recompiled at every cold start. Compile it
            # once here, as a layer should ship (our own asset is measured both ways, see run()).
            compileall.compile_dir(str(target), quiet=1, workers=0)
            stamp.write_text("\n".join(pins))
        dirs.append(target)
    return dirs[0], dirs[1]


def stage_asset() -> Path:
    from infra.assets import stage_lambda_asset

    return stage_lambda_asset(ASSET)


def run(runs: int, invocations: int) -> dict[str, Any]:
    layer, runtime = ensure_layer()
    asset = stage_asset()
    compiled = ASSET.parent / "asset-precompiled"  # the same asset with .pyc files: what shipping them would save
    shutil.rmtree(compiled, ignore_errors=True)
    shutil.copytree(asset, compiled)
    compileall.compile_dir(str(compiled), quiet=1, workers=0)
    paths = [str(asset), str(layer), str(runtime)]
    with emulator() as (_, resources), tempfile.TemporaryDirectory(prefix="flopsmeter-coldstart-") as tmp:
        per_run = invocations + 1
        jobs = [JobSpec(name=f"cold-{i:04d}") for i in range(runs * per_run + runs)]
        register_jobs(resources, jobs)
        env = {**os.environ, **function_env(resources)}
        env.pop("POWERTOOLS_TRACE_DISABLED", None)  # as deployed; Powertools turns the Tracer off outside Lambda
        child = _Child(Path(tmp), env, resources)
        staged = [child.run(paths, jobs[r * per_run : (r + 1) * per_run]) for r in range(runs)]
        rest = jobs[runs * per_run :]
        precompiled = [child.run([str(compiled), *paths[1:]], [rest[r]]) for r in range(runs)]
        breakdown = child.import_breakdown(paths)
    out = summarize(staged, paths)
    out["init_ms_p50_with_precompiled_asset"] = round(statistics.median(r["init_s"] for r in precompiled) * 1000, 1)
    out["init_breakdown_ms"] = breakdown
    return out


class _Child:
    """Runs CHILD in a fresh ``python -I -S -B`` (read-only code, as in Lambda: nothing is compiled to disk)."""

    def __init__(self, tmp: Path, env: dict[str, str], resources: Any) -> None:
        self.tmp, self.env, self.resources, self.count = tmp, env, resources, 0

    def run(self, paths: list[str], jobs: list[JobSpec], *flags: str) -> dict[str, Any]:
        self.count += 1
        events_file, result_file = self.tmp / f"events-{self.count}.json", self.tmp / f"result-{self.count}.json"
        events_file.write_text(json.dumps([self._event(job) for job in jobs]))
        reply = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-B",
                *flags,
                "-c",
                CHILD,
                json.dumps(paths),
                str(events_file),
                str(result_file),
            ],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,  # the handler's Powertools logs and EMF metrics
            stderr=subprocess.PIPE,
            text=True,
        )
        result: dict[str, Any] = json.loads(result_file.read_text())
        result["stderr"] = reply.stderr
        return result

    def import_breakdown(self, paths: list[str]) -> dict[str, float]:
        """Cumulative import time (``-X importtime``) of the packages that make up the init, largest first.

        Each is counted where it is first imported, so a package imported by another is inside that one's figure too.
        """
        stderr = self.run(paths, [], "-X", "importtime")["stderr"]
        totals: dict[str, float] = {}
        for line in stderr.splitlines():
            parts = line.removeprefix("import time:").split("|")
            if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
                continue
            name = parts[2].strip()
            if name in BREAKDOWN_PACKAGES:
                totals[name] = int(parts[1]) / 1000
        return {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}

    def _event(self, job: JobSpec) -> dict[str, Any]:
        body = json.dumps(_envelope(state_change_event(job, self.resources), self.resources))
        message: dict[str, Any] = {"MessageId": f"m-{job.name}", "ReceiptHandle": "rh", "Body": body, "MD5OfBody": "-"}
        message["Attributes"] = {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"}
        return sqs_event([message], self.resources)


def _envelope(entry: dict[str, Any], resources: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "coldstart-" + entry["Resources"][0].rsplit("/", 1)[-1],
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": resources.account_id,
        "time": "2026-01-01T00:00:00Z",
        "region": resources.region,
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


def summarize(results: list[dict[str, Any]], paths: list[str]) -> dict[str, Any]:
    def ms(values: list[float], pct: float) -> float | None:
        value = percentile([v * 1000 for v in values], pct)
        return None if value is None else round(value, 1)

    first = [r["invocations"][0] for r in results]
    warm = [i for r in results for i in r["invocations"][1:]]
    own = [i["wall_s"] - i["http_s"] for i in warm]
    inits = [r["init_s"] for r in results]
    failed = sum(i["failed"] for r in results for i in r["invocations"])
    leaked = sorted({m for r in results for m in r["top_level_modules"]} & {"torch", "transformers", "moto", "duckdb"})
    outside = [r[k] for r in results for k in ("boto3_file", "pydantic_file", "handler_file")]
    outside = [f for f in outside if not any(f.startswith(p) for p in paths)]
    out: dict[str, Any] = {
        "runs": len(results),
        "init_ms_p50": round(statistics.median(inits) * 1000, 1),
        "init_ms_max": round(max(inits) * 1000, 1),
        "init_target_ms": INIT_TARGET_MS,
        "first_invoke_ms_p50": ms([f["wall_s"] for f in first], 50),
        "first_invoke_own_ms_p50": ms([f["wall_s"] - f["http_s"] for f in first], 50),
        "warm_invocations": len(warm),
        "warm_p50_ms": ms(own, 50),
        "warm_p99_ms": ms(own, 99),
        "warm_target_ms": WARM_P50_TARGET_MS,
        "warm_wall_p50_ms": ms([i["wall_s"] for i in warm], 50),
        "warm_wall_p99_ms": ms([i["wall_s"] for i in warm], 99),
        "aws_calls_per_invocation": round(statistics.mean(i["calls"] for i in warm), 1) if warm else None,
        "noop_call_p50_ms": ms([v for r in results for v in r["noop_s"]], 50),
        "tracing_sdk_imported_at_init": all("aws_xray_sdk" in r["top_level_modules"] for r in results),
        "failed_records": failed,
        "heavy_modules_imported": leaked,
        "modules_from_outside_the_package": outside,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "layer": {p: _installed(p) for p in (*LAYER_PACKAGES, *RUNTIME_PACKAGES)},
    }
    out["ok"] = bool(
        out["init_ms_p50"] < INIT_TARGET_MS
        and out["warm_p50_ms"] is not None
        and out["warm_p50_ms"] < WARM_P50_TARGET_MS
        and failed == 0
        and not leaked
        and not outside
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/coldstart.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters (cold starts)")
    parser.add_argument("--invocations", type=int, default=40, help="warm invocations per run")
    args = parser.parse_args(argv)
    result = run(args.runs, args.invocations)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
