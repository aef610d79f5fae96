"""``flopsmeter demo`` (``make demo``): the product's main job, end to end, offline, on the local emulator.

1. start the emulator in this process and provision what the stack provisions;
2. run a real tiny LoRA fine-tuning with ``FlopsMeterCallback`` emitting to the emulated CloudWatch;
3. register more jobs (un-instrumented, known PRETRAIN_FLOPS, one that exceeds, a lineage parent + child,
   a failed job whose CloudTrail event never arrives, a job whose event is lost);
4. push state-change events through EventBridge -> SQS -> the real classifier handler, then a duplicate,
   an out-of-order InProgress and a malformed event; run the reconciler for the lost event;
5. show the records, the dead-letter queue, the alerts; after the last record, write the final signed digest,
   verify the trail and pull the mirror (every record, every digest);
6. try to delete and overwrite a record (refused, or detected), and stop the emulator.

Emulated, not AWS: moto's services; ``moto_ext`` fills DescribeTrainingJob's lifecycle and CloudTrail; the
runner plays Lambda's SQS event source mapping; job durations are declared (only the tiny job really ran).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.panel import Panel

from flopsmeter.local import demo_pipeline as pipeline
from flopsmeter.local import demo_trail as trail
from flopsmeter.local.demo_customization import run_customization_scenario
from flopsmeter.local.demo_hyperpod import run_hyperpod_scenario
from flopsmeter.local.demo_lineage import run_lineage_scenario
from flopsmeter.local.demo_next import next_steps
from flopsmeter.local.demo_obligations import run_obligations_scenario
from flopsmeter.local.demo_provenance import run_provenance_scenario
from flopsmeter.local.demo_session import Demo
from flopsmeter.local.demo_sessions_batch import run_sessions_and_batch_scenario
from flopsmeter.local.emulator import Emulator
from flopsmeter.local.show import console


def run_demo(*, out_dir: Path = Path(".local/demo"), train: bool = True) -> int:
    out = console()
    out_dir.mkdir(parents=True, exist_ok=True)
    # the mirror is this run's bucket: a previous run's objects (other versions, other digests) must not mix in
    shutil.rmtree(out_dir / "mirror", ignore_errors=True)
    out.print(
        Panel.fit(
            "[bold]FLOPs Meter demo[/]: every SageMaker training job's compute, classified against the EU AI Act "
            "thresholds\nfor downstream modifiers, recorded immutably and verifiably. Runs offline on an embedded AWS "
            "emulator.",
            border_style="blue",
        )
    )
    with Emulator() as emulator:
        demo = Demo(out, out_dir, train=train)
        pipeline.start(demo, emulator)
        pipeline.metered_job(demo)
        pipeline.declared_jobs(demo)
        pipeline.push_events(demo)
        pipeline.reconcile(demo)
        trail.records(demo)
        run_customization_scenario(demo)
        run_obligations_scenario(demo)  # issue 16: systemic crossing, due date, energy, documentation draft
        run_sessions_and_batch_scenario(demo)  # issue 26: a session crossing while running, a preempted Batch job
        run_lineage_scenario(demo)
        run_hyperpod_scenario(demo)  # issue 26: a HyperPod job reports itself; the rest of the cluster is a gap
        run_provenance_scenario(demo)
        trail.digest_and_verify(demo)  # after the last record: the final digest covers every one, then the mirror
        trail.tamper(demo)
    next_steps(demo)  # the emulator is gone: what the reader can run on the files it left
    demo.section("What the demo showed")
    failed = [what for what, ok in demo.checks if not ok]
    for what, ok in demo.checks:
        out.print(f"  {'[green]ok[/]  ' if ok else '[red]FAIL[/]'} {what}")
    out.print(
        f"demo checks: {len(demo.checks) - len(failed)} ok, {len(failed)} failed. Emulator stopped. "
        f"Logs: {demo.log_path}. Total {time.monotonic() - demo.started:.0f} s."
    )
    return 1 if failed else 0
