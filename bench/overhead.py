"""Overhead of the training meter: optimizer-step time with and without it, on the same model and data.

The meter runs with its default options (as a job runs it): hooks + ``step()``, emission every 60 s, and measured
mode on (the first two steps, and the first of each new shape, under ``FlopCounterMode``). Blocks of steps with the
meter attached and without it are interleaved (the order alternates every round) so drift in machine load hits both
equally; the medians of the per-step times are compared. The meter's own host cost per step is also timed
directly (hook + ``step()`` without training), and so is a measured step's extra host cost (``FlopCounterMode``
dispatches every operation through Python: a cost per operation, timed on the same model with rows of 8 tokens,
where the step is all host time). The amortised cost per step, ``meter + windows x measured-step cost / steps``, is
given as a share of the step time for a 1 000-step run (a short fine-tune: the target, < 0.1 %) and for the few steps
timed here; on a busy machine these figures are steadier than the difference of two noisy medians. On CUDA,
``--check-sync`` runs the metered steps under ``torch.cuda.set_sync_debug_mode("error")`` to prove the meter adds no
host synchronisation between emission points. Prints JSON.

    .venv/bin/python -m bench.overhead                  # CPU here (or: make bench-overhead)
    python3 -m bench.overhead --device cuda --check-sync --hidden 2048 --layers 8 ...   # see gpu_overhead.sh
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from flopsmeter.training.environment import read_job_environment
from flopsmeter.training.meter import FlopsMeter

TARGET_PCT = 0.1  # issue 22: the amortised host cost, measured mode included, under 0.1 % of a step
RUN_STEPS = 1_000  # a short fine-tuning run, for the amortised figure


def _model(args: argparse.Namespace) -> Any:
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(hidden_size=args.hidden, intermediate_size=args.inter, num_hidden_layers=args.layers,
                         num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, vocab_size=args.vocab,
                         max_position_embeddings=max(4096, args.seq), tie_word_embeddings=False)  # fmt: skip
    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=dtype)
    return model.to(args.device).train()


def _batches(args: argparse.Namespace, count: int) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=gen)
        mask = torch.ones_like(ids)
        mask[0, args.seq // 2 :] = 0
        labels = ids.masked_fill(mask == 0, -100)
        out.append({k: v.to(args.device) for k, v in {"input_ids": ids, "attention_mask": mask,
                                                        "labels": labels}.items()})  # fmt: skip
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _train_steps(model: Any, optimizer: Any, data: list[dict[str, Any]], meter: FlopsMeter | None) -> None:
    for batch in data:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if meter is not None:
            meter.step()


def _meter_host_cost_us(meter: FlopsMeter, batch: dict[str, Any], device: str, calls: int = 2000) -> float:
    """Host time of one micro-batch count + one ``step()``, averaged (no training; syncs as scheduled)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    _sync(device)
    started = time.perf_counter()
    for _ in range(calls):
        meter.counter.observe(ids, mask)
        meter.step()
    _sync(device)
    return (time.perf_counter() - started) / calls * 1e6


def _probe_host_cost_ms(model: Any, args: argparse.Namespace, repeats: int = 15) -> float:
    """Extra host time of one step under ``FlopCounterMode`` (per operation, so timed where the step is host-bound:
    the same model on one row of 8 tokens), median of paired differences."""
    from flopsmeter.training.flop_formulas import flop_counter

    ids = torch.randint(0, args.vocab, (1, 8)).to(args.device)

    def step() -> None:
        model(input_ids=ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)

    def timed(measured: bool) -> float:
        _sync(args.device)
        started = time.perf_counter()
        if measured:
            with flop_counter():
                step()
        else:
            step()
        _sync(args.device)
        return time.perf_counter() - started

    for _ in range(3):
        timed(False), timed(True)
    pairs = [timed(True) - timed(False) for _ in range(repeats)]
    return max(0.0, statistics.median(pairs)) * 1e3


def _check_no_sync(model: Any, optimizer: Any, data: list[dict[str, Any]], meter: FlopsMeter) -> dict[str, Any]:
    """Metered steps between emission points under CUDA sync debug mode "error": any host sync raises."""
    meter.sync(emit=False)
    meter._next_sync_step = meter.steps + 10_000  # keep the next emission point out of the checked window
    ids, mask = data[0]["input_ids"], data[0]["attention_mask"]
    try:
        torch.cuda.set_sync_debug_mode("error")
        for _ in range(len(data)):
            meter.counter.observe(ids, mask)
            meter.step()
        result: dict[str, Any] = {"no_host_sync_between_emissions": True}
    except RuntimeError as err:
        result = {"no_host_sync_between_emissions": False, "error": str(err)[:300]}
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--inter", type=int, default=688)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--block", type=int, default=4, help="steps per timed block")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--check-sync", action="store_true", help="CUDA only: prove no host sync per step")
    args = parser.parse_args(argv)

    model = _model(args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    data = _batches(args, args.block)
    with tempfile.TemporaryDirectory() as tmp:
        env = read_job_environment({}, output_dir=tmp, resource_config_path=str(Path(tmp) / "none.json"))
        meter = FlopsMeter(model, environment=env, stdout=False, cloudwatch=False, handle_signals=False,
                           emit_every_s=60.0).start()  # fmt: skip
        for _ in range(args.warmup):
            _train_steps(model, optimizer, data[:1], None)
        times: dict[bool, list[float]] = {False: [], True: []}
        ratios = []
        for r in range(args.rounds):
            block: dict[bool, float] = {}
            for metered in (False, True) if r % 2 == 0 else (True, False):
                if metered:
                    meter.attach(model)
                _sync(args.device)
                started = time.perf_counter()
                _train_steps(model, optimizer, data, meter if metered else None)
                _sync(args.device)
                block[metered] = (time.perf_counter() - started) / len(data)
                meter.detach()
                times[metered].append(block[metered])
            ratios.append(block[True] / block[False])
        windows = meter.counting.probe.count
        host_cost_us = _meter_host_cost_us(meter, data[0], args.device)
        probe_ms = _probe_host_cost_ms(model, args)
        sync_check = _check_no_sync(model, optimizer, data, meter) if args.check_sync else None
        meter.close()
    off, on = statistics.median(times[False]), statistics.median(times[True])
    step_ms = off * 1e3
    timed_steps = args.rounds * args.block

    def amortised_pct(steps: int) -> float:
        return (host_cost_us / 1e3 + windows * probe_ms / steps) / step_ms * 100

    result = {
        "benchmark": "overhead",
        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name(),
        "target_pct": TARGET_PCT,
        "median_step_ms_without": round(off * 1e3, 3),
        "median_step_ms_with": round(on * 1e3, 3),
        "overhead_pct_median": round((on / off - 1) * 100, 3),
        "overhead_pct_paired_median": round((statistics.median(ratios) - 1) * 100, 3),
        "meter_host_cost_us_per_step": round(host_cost_us, 2),
        "meter_host_cost_pct_of_step": round(host_cost_us / 1e3 / step_ms * 100, 4),
        "measured_windows": windows,
        "measured_step_extra_host_ms": round(probe_ms, 3),
        "amortised_host_cost_pct_of_step": round(amortised_pct(timed_steps), 4),
        f"amortised_host_cost_pct_of_step_{RUN_STEPS}_steps": round(amortised_pct(RUN_STEPS), 4),
        "within_target": amortised_pct(RUN_STEPS) < TARGET_PCT,
        "sync_check": sync_check,
        "steps_timed_each": timed_steps,
        "options": "defaults (measure_steps=2, calibrate=True), emit_every_s=60",
        "model": {"hidden": args.hidden, "layers": args.layers, "seq": args.seq, "batch": args.batch,
                  "vocab": args.vocab, "dtype": args.dtype, "params": sum(p.numel() for p in model.parameters())},
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()},
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
