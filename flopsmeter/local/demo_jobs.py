"""The demo's training jobs: what each one shows, and the SageMaker-side moves that play them on the emulator
(created by an assumed-role caller so CloudTrail names a person; lifecycle set through ``moto_ext``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flopsmeter import contract

ROLE = "MLEngineer"


@dataclass(frozen=True)
class DemoJob:
    name: str
    who: str  # role session name: the CloudTrail principal
    instance_type: str
    instance_count: int
    hours: float
    status: str = "Completed"
    environment: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None
    story: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # more CreateTrainingJob fields (e.g. InputDataConfig)


DECLARED_JOBS = (
    DemoJob(
        "demo-full-ft-unmetered",
        "bob",
        "ml.p4d.24xlarge",
        2,
        6.0,
        story="no meter: classified on its hardware ceiling (chips x seconds x peak)",
    ),
    DemoJob(
        "demo-llama70b-known",
        "alice",
        "ml.p4d.24xlarge",
        4,
        12.0,
        environment={contract.ENV_PRETRAIN_FLOPS: "1.5e24", contract.ENV_BASE_MODEL: "meta-llama/Meta-Llama-3-70B"},
        story="PRETRAIN_FLOPS=1.5e24 known: threshold 0.30 x 1.5e24 = 4.5e23",
    ),
    DemoJob(
        "demo-big-exceeds",
        "bob",
        "ml.p5.48xlarge",
        16,
        80.0,
        status="Stopped",
        story="16 x p5 for 80 h, stopped by its owner: compute spent still counts; exceeds 3.3e22",
    ),
    DemoJob("demo-sft-stage1", "alice", "ml.p5.48xlarge", 8, 60.0, story="lineage parent"),
    DemoJob(
        "demo-dpo-stage2",
        "alice",
        "ml.p5.48xlarge",
        8,
        60.0,
        environment={contract.ENV_PARENT_JOB: "demo-sft-stage1"},
        story="lineage child of demo-sft-stage1: classified on parent + own FLOPs",
    ),
    DemoJob(
        "demo-failed-oom",
        "bob",
        "ml.g5.12xlarge",
        1,
        2.0,
        status="Failed",
        failure_reason="CUDA out of memory",
        story="failed job; its CloudTrail event never arrives",
    ),
)
LOST_JOB = DemoJob(
    "demo-lost-event",
    "bob",
    "ml.g5.2xlarge",
    1,
    3.0,
    story="its state-change event is lost: the scheduled reconciler records it",
)
METERED_JOB = "demo-lora-metered"
