"""The demo's real training job: a tiny LoRA fine-tuning on CPU, metered by ``FlopsMeterCallback`` into the
emulated CloudWatch (needs the ``training`` extra: torch, transformers, peft)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from flopsmeter import contract
from flopsmeter.local.provision import LocalResources


def run_tiny_fine_tuning(job_name: str, out_dir: Path, resources: LocalResources) -> dict[str, Any]:
    """A real LoRA fine-tuning of a tiny Llama-shaped model on synthetic tokens (CPU, ~10-30 s)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    from flopsmeter.training import FlopsMeterCallback

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=128,
        intermediate_size=344,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    model = get_peft_model(
        LlamaForCausalLM(config),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, task_type="CAUSAL_LM"),
    )
    rows = []
    for i in range(64):
        ids = torch.randint(3, config.vocab_size, (128,))
        mask = torch.ones(128, dtype=torch.long)
        pad = (i % 4) * 16  # some padded rows: padding is computed (and counted) too
        if pad:
            ids[-pad:], mask[-pad:] = 0, 0
        labels = ids.clone()
        labels[mask == 0] = -100
        rows.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    args = TrainingArguments(
        output_dir=str(out_dir),
        max_steps=16,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    meter = FlopsMeterCallback(
        job_name=job_name, cloudwatch=True, emit_every_s=0, stdout=False, output_dir=str(out_dir), handle_signals=False
    )
    env = {
        "AWS_ENDPOINT_URL": resources.endpoint,
        "AWS_REGION": resources.region,
        "AWS_DEFAULT_REGION": resources.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        contract.ENV_TRAINING_JOB_NAME: job_name,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    started = time.monotonic()
    try:
        Trainer(model=model, args=args, train_dataset=rows, callbacks=[meter]).train()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.monotonic() - started
    document = json.loads((out_dir / "flops_meter.json").read_text())
    totals = document.get("totals", document)
    return {
        "steps": args.max_steps,
        "seconds": seconds,
        "flops": float(_first(document, "cumulative_flops", "flops")),
        "tokens": int(_first(document, "tokens")),
        "non_padding_tokens": int(_first(document, "non_padding_tokens")),
        "file": str(out_dir / "flops_meter.json"),
        "totals": totals,
    }


def _first(document: dict[str, Any], *names: str) -> Any:
    """The first of ``names`` found in the meter file (top level or one level down)."""
    for scope in (document, *(v for v in document.values() if isinstance(v, dict))):
        for name in names:
            if name in scope:
                return scope[name]
    return 0
