"""The meter's crossing alert: once, the moment prior + metered FLOPs go over the lowest threshold, with the
Art. 52(1) due date for a systemic-risk base (a stdout ``flopsmeter:`` line and a CloudWatch datum)."""

from __future__ import annotations

import io
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flopsmeter import contract
from flopsmeter.domain.deadlines import notification_due
from flopsmeter.domain.pretrain import resolve_pretrain_compute
from flopsmeter.training.crossing import CrossingWatch
from flopsmeter.training.emitters import METRIC_DEFINITIONS

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def _watch(pretrain: float, *, systemic: bool = False, prior: float = 0.0) -> CrossingWatch:
    pc = resolve_pretrain_compute(argument_value=pretrain, systemic_risk_base=systemic)
    return CrossingWatch(pc, prior, clock=lambda: NOW)


def test_systemic_base_alerts_once_above_the_lowest_threshold_with_the_due_date() -> None:
    watch = _watch(3.8e25, systemic=True)  # aws-30pct: 3.3e24 (systemic); eu: 1.27e25 -> 3.3e24 is crossed first
    assert watch.threshold.value == 3.3e24
    assert watch.observe(3.3e24) is None  # equal does not cross
    alert = watch.observe(math.nextafter(3.3e24, math.inf))
    assert alert is not None and alert.crossed_at == NOW
    assert alert.notification_due_at == notification_due(NOW)
    assert watch.observe(5e24) is None  # once per run


def test_prior_lineage_flops_count_and_non_systemic_base_has_no_clock() -> None:
    watch = _watch(1.5e24, prior=4.4e23)  # aws: 4.5e23
    assert watch.observe(9e21) is None and watch.observe(2e22) is not None
    assert watch.alert is not None and watch.alert.notification_due_at is None


def test_a_total_that_is_not_a_number_counts_as_crossed() -> None:
    assert _watch(1.5e24, prior=math.inf).observe(0.0) is not None
    assert _watch(1.5e24).observe(math.nan) is not None


def test_alert_line_and_metric() -> None:
    watch = _watch(3.8e25, systemic=True)
    alert = watch.observe(4e24)
    assert alert is not None
    line = alert.line()
    assert line.startswith("flopsmeter: threshold_crossed=1 ")
    assert "crossed_at=2026-03-10T09:30:00Z" in line and "notification_due_at=2026-03-24T23:00:00Z" in line
    # the totals' MetricDefinitions must not read numbers off the alert line
    assert not any(re.search(d["Regex"], line) for d in METRIC_DEFINITIONS)
    (datum,) = alert.metric_data("job-1")
    assert datum["MetricName"] == contract.METRIC_THRESHOLD_CROSSED and datum["Timestamp"] == NOW
    assert datum["Dimensions"] == [{"Name": contract.METRIC_DIMENSION, "Value": "job-1"}]


class _FakeCloudWatch:
    def __init__(self) -> None:
        self.data: list[dict[str, object]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, object]]) -> None:  # noqa: N803
        assert Namespace == contract.METRICS_NAMESPACE
        self.data.extend(MetricData)


@pytest.mark.torch
def test_running_meter_alerts_at_the_sync_that_crosses(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from flopsmeter.domain.flops import flops_per_token
    from flopsmeter.domain.shape import ModelShape
    from flopsmeter.training.emitters import CloudWatchEmitter
    from flopsmeter.training.environment import read_job_environment
    from flopsmeter.training.meter import FlopsMeter
    from tests.support.tiny_models import batches, build, llama_config

    model = build(llama_config())
    per_step = flops_per_token(ModelShape.from_hf_config(model.config.to_dict()), 32).total * 4 * 32
    fake = _FakeCloudWatch()
    out = io.StringIO()
    env = read_job_environment({}, output_dir=tmp_path, resource_config_path=str(tmp_path / "none.json"))
    meter = FlopsMeter(
        model, environment=env, handle_signals=False, emit_every_s=0, stdout=out, job_name="job-1",
        policy="eu-guideline-2025-07", pretrain_flops=3 * 2.5 * per_step,  # eu threshold 2.5 steps, aws 3.3e22
        cloudwatch_emitter=CloudWatchEmitter("job-1", client_factory=lambda region, endpoint: fake),
    ).start()  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    lines_after: list[int] = []
    for batch in batches(5):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        meter.step(batch)
        lines_after.append(out.getvalue().count("threshold_crossed=1"))
    meter.close()
    assert lines_after == [0, 0, 1, 1, 1]  # the third step takes the lineage over 2.5 steps' FLOPs, once
    assert [d["MetricName"] for d in fake.data].count(contract.METRIC_THRESHOLD_CROSSED) == 1
