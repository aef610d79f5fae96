"""The meter's HyperPod report (issue 26 point 3): what it says of a Slurm job, that the service's edge model reads
it, and that a report that cannot be sent never stops training and is kept on disk."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flopsmeter import contract
from flopsmeter.functions.hyperpod_models import parse_report
from flopsmeter.training.hyperpod_report import REPORT_FILE_NAME, build_report, job_id_from, send_report

CALLER = "arn:aws:sts::123456789012:assumed-role/HyperPodNodeRole/i-0123456789abcdef0"
SLURM = {
    contract.ENV_REPORT_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/reports",
    contract.ENV_HYPERPOD_CLUSTER: "research", "SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "2",
    "SLURM_JOB_START_TIME": "1795000000", "SLURM_JOB_USER": "dana", "FLOPSMETER_INSTANCE_TYPE": "ml.p5.48xlarge",
    contract.ENV_BASE_MODEL: "meta-llama/Llama-3.1-8B", "UNRELATED": "x",
}  # fmt: skip
SNAP = SimpleNamespace(cumulative_flops=3.0e20, tokens=1_000, non_padding_tokens=900, recompute_flops=1.0e19,
                       incomplete=False, unmetered=False)  # fmt: skip


class Clients:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, service: str, region_name: str | None = None) -> Any:
        assert region_name == "eu-west-1"
        if service == "sts":
            return SimpleNamespace(get_caller_identity=lambda: {"Arn": CALLER})
        return SimpleNamespace(send_message=self.send)

    def send(self, **kwargs: Any) -> dict[str, str]:
        if self.fail:
            raise ConnectionError("no route to SQS")
        self.sent.append(kwargs)
        return {"MessageId": "m-1"}


def test_a_slurm_jobs_report_is_what_the_service_reads(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    body = build_report(SNAP, "completed", CALLER, SLURM, datetime(2026, 11, 20, tzinfo=UTC))
    report = parse_report(json.dumps(body))
    assert (report.cluster, report.job_id, report.orchestrator, report.node_count) == ("research", "4242", "slurm", 2)
    assert report.status == "Completed" and report.figures.cumulative_flops == 3.0e20 and report.submitted_by == "dana"
    assert report.settings == {contract.ENV_BASE_MODEL: "meta-llama/Llama-3.1-8B"}  # only the settings it reads
    assert report.start.timestamp() == 1795000000


def test_job_ids_follow_slurm_arrays_and_an_explicit_id_wins() -> None:
    assert job_id_from({"SLURM_JOB_ID": "10", "SLURM_ARRAY_JOB_ID": "9", "SLURM_ARRAY_TASK_ID": "3"}) == "9_3"
    assert job_id_from({"SLURM_JOB_ID": "10", "FLOPSMETER_JOB_ID": "pytorchjob-llama"}) == "pytorchjob-llama"
    assert job_id_from({}) is None


def test_an_unmetered_job_reports_that_it_could_not_be_metered() -> None:
    from datetime import UTC, datetime

    body = build_report(SimpleNamespace(unmetered=True), "failed", CALLER, SLURM, datetime.now(UTC))
    assert body["meter_incomplete"] == 1.0 and "cumulative_flops" not in body and body["status"] == "Failed"


def test_the_report_is_sent_once_and_kept_on_disk(tmp_path: Path) -> None:
    clients = Clients()
    assert send_report(SNAP, "completed", tmp_path, env=SLURM, clients=clients) == "m-1"
    [sent] = clients.sent
    assert sent["QueueUrl"] == SLURM[contract.ENV_REPORT_QUEUE_URL]
    assert json.loads(sent["MessageBody"]) == json.loads((tmp_path / REPORT_FILE_NAME).read_text())


def test_without_a_queue_nothing_is_sent_and_a_failed_send_never_raises(tmp_path: Path, capsys) -> None:
    assert send_report(SNAP, "completed", tmp_path, env={}, clients=Clients()) is None
    assert send_report(SNAP, "completed", tmp_path, env=SLURM, clients=Clients(fail=True)) is None
    assert "hyperpod_report=not_sent reason=ConnectionError" in capsys.readouterr().out
    assert (tmp_path / REPORT_FILE_NAME).is_file()  # kept: the same role can send it later
