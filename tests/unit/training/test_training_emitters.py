"""Emitters: stdout lines the documented MetricDefinitions capture, the JSON file, CloudWatch retries."""

from __future__ import annotations

import io
import json
import re

import pytest

from flopsmeter import contract
from flopsmeter.domain.shape import ModelShape
from flopsmeter.training.emitters import (
    METRIC_DEFINITIONS,
    CloudWatchEmitter,
    FileEmitter,
    Snapshot,
    StdoutEmitter,
    format_line,
    metric_data,
)
from tests.support.meters import quiet_meter

SNAP = Snapshot(step=12, cumulative_flops=1.234567891e21, tokens=40960, non_padding_tokens=39001,
                recompute_flops=0.0, flops_per_token=3.014e16, ceiling_ratio=0.41, threshold_ratio=2.5e-2,
                status="running", update_flops=1.0e21, reference_flops=1.5e20, generation_flops=8.4567891e19,
                reward_inference_flops=1.0e18)  # fmt: skip


def _captures(text: str) -> dict[str, float]:
    found = {}
    for definition in METRIC_DEFINITIONS:
        match = re.search(definition["Regex"], text)
        if match:
            found[definition["Name"]] = float(match.group(1))
    return found


def test_metric_definitions_capture_every_value_of_a_line() -> None:
    assert _captures(format_line(SNAP)) == {
        "flopsmeter:cumulative_flops": pytest.approx(1.234567891e21),
        "flopsmeter:tokens": 40960,
        "flopsmeter:non_padding_tokens": 39001,
        "flopsmeter:flops_per_token": pytest.approx(3.014e16),
        "flopsmeter:ceiling_ratio": pytest.approx(0.41),
        "flopsmeter:threshold_ratio": pytest.approx(0.025),
        "flopsmeter:meter_incomplete": 0,
        "flopsmeter:update_flops": pytest.approx(1.0e21),
        "flopsmeter:reference_flops": pytest.approx(1.5e20),
        "flopsmeter:generation_flops": pytest.approx(8.4567891e19),
        "flopsmeter:reward_inference_flops": pytest.approx(1.0e18),
        "flopsmeter:recompute_flops": 0.0,
    }


def test_the_breakdown_goes_to_cloudwatch_only_when_more_than_update_passes_were_counted() -> None:
    names = {d["MetricName"]: d["Value"] for d in metric_data(SNAP, "job-1")}
    assert names[contract.METRIC_UPDATE_FLOPS] == pytest.approx(1.0e21)
    assert names[contract.METRIC_GENERATION_FLOPS] == pytest.approx(8.4567891e19)
    assert names[contract.METRIC_REWARD_INFERENCE_FLOPS] == pytest.approx(1.0e18)
    plain = Snapshot(**{**SNAP.__dict__, "reference_flops": 0.0, "generation_flops": 0.0,
                        "reward_inference_flops": 0.0})  # fmt: skip
    sent = {d["MetricName"] for d in metric_data(plain, "job-1")}
    assert not sent & {contract.METRIC_UPDATE_FLOPS, contract.METRIC_REFERENCE_FLOPS,
                       contract.METRIC_GENERATION_FLOPS, contract.METRIC_REWARD_INFERENCE_FLOPS}  # fmt: skip


def test_a_measured_disagreement_goes_to_the_line_and_to_cloudwatch_with_both_figures() -> None:
    assert "measured_flops" not in format_line(SNAP)
    assert not {d["MetricName"] for d in metric_data(SNAP, "job-1")} & {contract.METRIC_MEASURED_FLOPS}
    disagreed = Snapshot(**{**SNAP.__dict__, "measured_flops": 1.2e18, "measured_closed_form_flops": 1.0e18})
    captured = _captures(format_line(disagreed))
    assert captured["flopsmeter:measured_flops"] == pytest.approx(1.2e18)
    assert captured["flopsmeter:measured_closed_form_flops"] == pytest.approx(1.0e18)
    sent = {d["MetricName"]: d["Value"] for d in metric_data(disagreed, "job-1")}
    assert sent[contract.METRIC_MEASURED_FLOPS] == 1.2e18 and sent[contract.METRIC_MEASURED_CLOSED_FORM_FLOPS] == 1.0e18


def test_metric_definitions_match_after_progress_bar_debris_on_the_same_line() -> None:
    text = "\r 12%|#2   | 1/8 [00:01<00:13]" + format_line(SNAP)
    assert _captures(text)["flopsmeter:tokens"] == 40960


def test_unknown_ceiling_ratio_is_left_out_of_the_line() -> None:
    line = format_line(Snapshot(**{**SNAP.__dict__, "ceiling_ratio": None}))
    assert "ceiling_ratio" not in line
    assert "flopsmeter:ceiling_ratio" not in _captures(line)


def test_stdout_emitter_writes_one_line_per_snapshot() -> None:
    stream = io.StringIO()
    StdoutEmitter(stream).emit(SNAP)
    StdoutEmitter(stream).emit(SNAP)
    assert stream.getvalue().count("\n") == 2


def test_stdout_emitter_survives_a_closed_stream() -> None:
    stream = io.StringIO()
    stream.close()
    StdoutEmitter(stream).emit(SNAP)  # logged, not raised


def test_file_emitter_writes_json_and_replaces_it(tmp_path) -> None:
    emitter = FileEmitter(tmp_path / "out" / "flops_meter.json")
    assert emitter.write({"flops": 1.0})
    assert emitter.write({"flops": 2.0})
    assert json.loads(emitter.path.read_text()) == {"flops": 2.0}
    assert [p.name for p in emitter.path.parent.iterdir()] == ["flops_meter.json"]  # no temp files left


def test_file_emitter_counts_a_failure_instead_of_raising(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    emitter = FileEmitter(blocker / "flops_meter.json")  # parent is a file
    assert not emitter.write({"flops": 1.0})
    assert emitter.failures == 1


def test_file_emitter_refuses_nan_rather_than_writing_invalid_json(tmp_path) -> None:
    emitter = FileEmitter(tmp_path / "flops_meter.json")
    assert not emitter.write({"flops": float("nan")})


def test_metric_data_uses_the_contract_names_and_dimension() -> None:
    data = metric_data(SNAP, "job-1")
    assert {d["MetricName"] for d in data} == {
        contract.METRIC_CUMULATIVE_FLOPS, contract.METRIC_CUMULATIVE_TOKENS,
        contract.METRIC_CUMULATIVE_NON_PADDING_TOKENS, contract.METRIC_RECOMPUTE_FLOPS,
        contract.METRIC_FLOPS_PER_TOKEN, contract.METRIC_CEILING_RATIO, contract.METRIC_UPDATE_FLOPS,
        contract.METRIC_REFERENCE_FLOPS, contract.METRIC_GENERATION_FLOPS, contract.METRIC_REWARD_INFERENCE_FLOPS,
    }  # fmt: skip
    assert all(d["Dimensions"] == [{"Name": contract.METRIC_DIMENSION, "Value": "job-1"}] for d in data)


class FlakyClient:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict] = []

    def put_metric_data(self, **kwargs) -> None:
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures:
            raise ConnectionError("throttled")


def test_cloudwatch_emitter_retries_then_sends() -> None:
    client = FlakyClient(failures=2)
    emitter = CloudWatchEmitter("job-1", attempts=4, backoff_s=0.0, client_factory=lambda r, e: client)
    emitter.emit(SNAP)
    emitter.close(timeout_s=5)
    assert (emitter.sent, emitter.failures, len(client.calls)) == (1, 0, 3)
    assert client.calls[-1]["Namespace"] == contract.METRICS_NAMESPACE


def test_cloudwatch_emitter_gives_up_logs_and_keeps_going(caplog) -> None:
    client = FlakyClient(failures=100)
    emitter = CloudWatchEmitter("job-1", attempts=2, backoff_s=0.0, client_factory=lambda r, e: client)
    emitter.emit(SNAP)
    emitter.emit(SNAP)
    emitter.close(timeout_s=5)
    assert (emitter.sent, emitter.failures, len(client.calls)) == (0, 2, 4)
    assert "put_metric_data failed" in caplog.text


def test_cloudwatch_emitter_survives_a_client_that_cannot_be_created() -> None:
    def factory(region, endpoint):
        raise ImportError("No module named 'boto3'")

    emitter = CloudWatchEmitter("job-1", attempts=1, backoff_s=0.0, client_factory=factory)
    emitter.emit(SNAP)
    emitter.close(timeout_s=5)
    assert emitter.failures == 1


def _botocore_errors():
    botocore = pytest.importorskip("botocore.exceptions")
    denied = botocore.ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutMetricData")
    return {"NoCredentialsError": botocore.NoCredentialsError(), "NoRegionError": botocore.NoRegionError(),
            "AccessDenied": denied}  # fmt: skip


@pytest.mark.parametrize("kind", ["NoCredentialsError", "NoRegionError", "AccessDenied"])
def test_a_meter_that_cannot_write_to_cloudwatch_says_so_on_stdout_and_in_the_file(tmp_path, kind) -> None:
    torch = pytest.importorskip("torch")
    error = _botocore_errors()[kind]
    calls: list[int] = []

    def factory(region, endpoint):
        calls.append(1)
        raise error

    out = io.StringIO()
    emitter = CloudWatchEmitter("job-1", attempts=4, backoff_s=0.0, client_factory=factory)
    shape = ModelShape(hidden_size=64, num_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                       intermediate_size=128, vocab_size=256)  # fmt: skip
    meter = quiet_meter(tmp_path, shape=shape, stdout=out, cloudwatch_emitter=emitter, emit_every_s=0).start()
    meter.observe({"input_ids": torch.zeros((1, 8), dtype=torch.long)})
    meter.step()
    meter.step()
    meter.close()
    lines = [line for line in out.getvalue().splitlines() if "cloudwatch_failed=1" in line]
    assert len(lines) == 1 and lines[0].startswith(f"flopsmeter: cloudwatch_failed=1 error={kind}")
    assert not _captures(lines[0])  # no MetricDefinition reads it
    assert len(calls) == emitter.failures  # permanent: no retries
    doc = json.loads((tmp_path / "flops_meter.json").read_text())
    assert doc["emission"]["cloudwatch_last_error"].startswith(kind)
    assert sum("CloudWatch writes failed" in w for w in doc["warnings"]) == 1
    assert doc["flops"] > 0  # the totals are still in the file
