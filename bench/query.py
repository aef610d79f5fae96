"""Query presets over synthetic audit records (DuckDB), printed as JSON: 100 000 by default, or 1 000 000
compacted to Parquet.

Records are real ``AuditRecord``s (pydantic-validated, sealed), classified by the domain code, spread over a
year, 40 accounts' worth of job names, the bundled base-model catalog and the accelerator catalog. They are
generated once and cached under ``.local/bench/query-records-<N>/`` (same key layout as the bucket). With
``--compacted`` the records are first compacted (``flopsmeter compact``) and the query cache is built from the
Parquet files.

    python -m bench.query [--records N] [--compacted] [--dir PATH] [--prepare]
    make bench-query                                                   (100 000, JSON)
    make bench-query BENCH_QUERY_ARGS="--records 1000000 --compacted"
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flopsmeter.audit.keys import record_key
from flopsmeter.audit.record import (
    AuditRecord,
    BaseModelInfo,
    CloudTrailRef,
    FlopsInfo,
    HardwareCeilingInfo,
    JobInfo,
    LaunchLink,
    Lineage,
    PolicyClassification,
    record_id_for,
)
from flopsmeter.cli.main import main as cli_main
from flopsmeter.compliance.compaction.local import compact_dir
from flopsmeter.compliance.query import CACHE_NAME, Preset, connect, preset_sql, run_duckdb
from flopsmeter.domain.catalog import BASE_MODELS
from flopsmeter.domain.classification import classify
from flopsmeter.domain.hardware import hardware_ceiling

DEFAULT_DIR = Path(".local/bench/query-records")  # + "-<records>"
ACCOUNT, REGION = "123456789012", "eu-west-1"
INSTANCES = (
    "ml.p5.48xlarge",
    "ml.p4d.24xlarge",
    "ml.g5.12xlarge",
    "ml.g6e.48xlarge",
    "ml.trn1.32xlarge",
    "ml.g5.2xlarge",
)
PRESETS = {  # name: (the preset, the same as `flopsmeter query` options)
    "all_jobs_latest_100": (Preset(limit=100), ["--limit", "100"]),
    "exceeding": (Preset(exceeding=True), ["--exceeding"]),
    "job": (Preset(job="ft-job-0042424"), ["--job", "ft-job-0042424"]),
    "since_last_30_days": (Preset(since="2026-10-01"), ["--since", "2026-10-01"]),
    "by_base_model": (Preset(by_base_model=True), ["--by-base-model"]),
    "by_sweep": (Preset(by_sweep=True), ["--by-sweep"]),
}
SWEEP_EVERY = 20  # every 20th job is a tuning trial (50 trials per sweep); no random draw, so older sets keep theirs


def synthetic_record(i: int, rng: random.Random, start: datetime) -> AuditRecord:
    """One realistic record: a real catalog base model (or unknown), a real instance, FLOPs log-uniform."""
    name = f"ft-job-{i:07d}"
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}"
    end = start + timedelta(seconds=rng.randrange(365 * 86400))
    seconds = float(rng.randrange(600, 5 * 86400))
    instance = rng.choice(INSTANCES)
    count = rng.choice((1, 1, 1, 2, 4, 8))
    ceiling = hardware_ceiling(instance, count, seconds)
    base = rng.choice(BASE_MODELS) if rng.random() < 0.85 else None
    pretrain = base.pretrain_flops if base else None
    metered = rng.random() < 0.7
    flops = ceiling.flops * rng.uniform(0.15, 0.55) if metered else ceiling.flops
    flops = min(flops, 10 ** rng.uniform(18, 24.5))
    parent = f"ft-job-{rng.randrange(i):07d}" if i and rng.random() < 0.1 else None
    parent_flops = 10 ** rng.uniform(18, 23) if parent else 0.0
    cumulative = flops + parent_flops
    result = classify(cumulative, pretrain, systemic_risk_base=bool(base and base.systemic_risk))
    record = AuditRecord(
        record_id=record_id_for(arn),
        recorded_at=end + timedelta(minutes=rng.randrange(1, 20)),
        job=JobInfo(
            name=name,
            arn=arn,
            account_id=ACCOUNT,
            region=REGION,
            status=rng.choice(("Completed", "Completed", "Completed", "Failed", "Stopped")),
            start_time=end - timedelta(seconds=seconds),
            end_time=end,
            instance_type=instance,
            instance_count=count,
            billable_seconds=int(seconds),
            training_seconds=seconds,
        ),
        base_model=BaseModelInfo(
            model_id=base.model_id if base else None,
            pretrain_flops=pretrain,
            source="catalog" if base else "unknown",
            basis=(base.used_estimate.note if base and base.used_estimate else "not declared"),
            systemic_risk=bool(base and base.systemic_risk),
        ),
        flops=FlopsInfo(
            method="metered" if metered else "hardware_ceiling",
            classified_flops=flops,
            metered=flops if metered else None,
            hardware_ceiling=HardwareCeilingInfo(
                flops=ceiling.flops,
                bf16_flops=ceiling.bf16_flops,
                accelerator=ceiling.accelerator,
                chips_per_instance=ceiling.chips_per_instance,
                instance_count=count,
                seconds=ceiling.seconds,
                peak_flops_per_chip=ceiling.peak_flops_per_chip,
                precision=ceiling.precision,
                known_instance=True,
                peak_source=ceiling.peak_source,
            ),
            tokens=int(flops / 6e9) if metered else None,
            formula_version="arch-v1" if metered else None,
            uncertainty=(
                "architecture-based, +-5 %"
                if metered
                else "upper bound: chips x seconds x dense peak (utilisation 1.0)"
            ),
        ),
        classifications=[PolicyClassification.from_result(r) for r in result.results],
        primary_policy=result.primary_policy,
        outcome=result.primary.outcome.value,
        cloudtrail=CloudTrailRef(
            status="found",
            event_id=f"{i:08x}-0000-4000-8000-000000000000",
            event_time=end - timedelta(seconds=seconds + 60),
            principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/MLEngineer/user{_person(i)}",
            source_ip="203.0.113.10",
            chain=_sweep_chain(i),
        ),
        lineage=Lineage(
            parent_job=parent,
            own_flops=flops,
            parent_cumulative_flops=parent_flops,
            cumulative_flops=cumulative,
            chain=[parent] if parent else [],
        ),
        warnings=list(result.warnings),
    )
    return record.sealed()


def _person(i: int) -> int:
    """Who launched job ``i``: for a tuning trial, the person who launched its sweep."""
    return (i // (50 * SWEEP_EVERY) if i % SWEEP_EVERY == 0 else i) % 97


def _sweep_chain(i: int) -> list[LaunchLink]:
    if i % SWEEP_EVERY:
        return []
    sweep = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/sweep-{i // (50 * SWEEP_EVERY):05d}"
    return [LaunchLink(kind="hyper-parameter-tuning-job", arn=sweep, event_name="CreateHyperParameterTuningJob")]


def generate(root: Path, count: int, *, seed: int = 7) -> float:
    """Write ``count`` records under ``root`` unless they are already there; returns seconds spent."""
    marker = root / ".generated.json"
    wanted = {"count": count, "seed": seed, "sweep_every": SWEEP_EVERY, "trials_by": "the sweep's person"}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return 0.0
    if root.exists():  # another generation's records (and their compacted copies) would be mixed in: start afresh
        shutil.rmtree(root)
    started = time.perf_counter()
    rng = random.Random(seed)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    for i in range(count):
        record = synthetic_record(i, rng, start)
        path = root / record_key(ACCOUNT, REGION, record.job.end_time, record.job.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(record.to_json_bytes())
    marker.write_text(json.dumps(wanted))
    return time.perf_counter() - started


def _median(values: list[float]) -> float:
    return round(sorted(values)[len(values) // 2], 4)


def _cli_seconds(root: Path, argv: list[str], repeat: int) -> tuple[list[float], list[float], int]:
    """The whole ``flopsmeter query`` in this process (parse, refresh check, SQL, CSV rendering): wall and CPU
    seconds (CPU: this process, all DuckDB threads; what the other sessions' load cannot inflate)."""
    timings, cpu, lines = [], [], 0
    for _ in range(repeat):
        out = io.StringIO()
        started, cpu_started = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(out):
            code = cli_main(["query", "--dir", str(root), *argv, "--format", "csv"])
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        if code != 0:
            raise SystemExit(f"flopsmeter query {' '.join(argv)} exited {code}")
        lines = len([line for line in out.getvalue().splitlines() if line]) - 1
    return timings, cpu, lines


def _process_seconds(root: Path, argv: list[str]) -> float:
    """The same command as a fresh process (interpreter start and imports included)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flopsmeter.cli.main", "query", "--dir", str(root), *argv, "--format", "csv"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _sql_seconds(root: Path, sql: str, repeat: int) -> list[float]:
    con = connect(root)
    try:
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            timings.append(time.perf_counter() - started)
        return timings
    finally:
        con.close()


def measure_presets(root: Path, repeat: int = 3) -> dict[str, dict[str, float]]:
    presets = {}
    for name, (preset, argv) in PRESETS.items():
        whole, cpu, rows = _cli_seconds(root, argv, repeat)
        presets[name] = {
            "rows": rows,
            "whole_cli_seconds_median": _median(whole),
            "whole_cli_seconds_max": round(max(whole), 4),
            "whole_cli_cpu_seconds_median": _median(cpu),
            "sql_only_seconds_median": _median(_sql_seconds(root, preset_sql(preset), repeat)),
            "fresh_process_seconds": round(_process_seconds(root, argv), 4),
        }
    return presets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, help=f"default {DEFAULT_DIR}-<records>")
    parser.add_argument("--compacted", action="store_true", help="compact to Parquet first; the cache reads it")
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="only generate (and compact) the records, then stop: time on a quiet machine",
    )
    args = parser.parse_args(argv)
    root = args.dir or Path(f"{DEFAULT_DIR}-{args.records}")
    load_at_start = round(os.getloadavg()[0], 2)
    generated = generate(root, args.records)
    compaction: dict[str, object] = {}
    if args.compacted:
        started, cpu_started = time.perf_counter(), time.process_time()
        run = compact_dir(root)
        compaction = {
            "seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(time.process_time() - cpu_started, 2),
            "partitions_written": len(run.written),
            "partitions_up_to_date": len(run.results) - len(run.written),
            "errors": run.errors,
        }
    if args.prepare:
        print(json.dumps({"prepared": str(root), "generate_seconds": round(generated, 2), "compaction": compaction}))
        return 0
    (root / CACHE_NAME).unlink(missing_ok=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    run_duckdb(root, "SELECT count(*) FROM records")  # builds the DuckDB cache (from Parquet when compacted)
    first_build, first_build_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "benchmark": "query-presets",
                "engine": "duckdb",
                "records": args.records,
                "compacted": args.compacted,
                "dir": str(root),
                "generate_seconds": round(generated, 2),
                "compaction": compaction,
                "first_cache_build_seconds": round(first_build, 2),
                "first_cache_build_cpu_seconds": round(first_build_cpu, 2),
                "presets": measure_presets(root),
                "note": "whole_cli: `flopsmeter query --dir D <preset> --format csv` in-process (argument parsing, "
                "cache refresh check, SQL, CSV rendering; median of 3, warm); fresh_process: the same as a new "
                "Python process (interpreter start and imports included); sql_only: the SQL on an open connection",
                "load_average_1m_at_start": load_at_start,
                "load_average_1m": round(os.getloadavg()[0], 2),
                "cpu_count": os.cpu_count(),
                "python": sys.version.split()[0],
                "log10_span": [18, math.log10(3.3e24)],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
