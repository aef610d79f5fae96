"""Fine-tune a causal LM inside a SageMaker training job, metered by flopsmeter (entry point of the estimator
in ``launch_training_job.py``).

The opt-in is one line: ``callbacks=[FlopsMeterCallback(...)]``. The meter reads TRAINING_JOB_NAME,
PRETRAIN_FLOPS and FLOPSMETER_BASE_MODEL from the job environment, emits CloudWatch metrics (namespace
FlopsMeter, dimension TrainingJobName) and stdout lines for MetricDefinitions, writes
/opt/ml/output/data/flops_meter.json, and saves its totals into every checkpoint.

Runs locally without a download: ``python examples/sagemaker_train.py --model-id tiny-random --max-steps 4``.
"""

from __future__ import annotations

import argparse
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from flopsmeter.training import FlopsMeterCallback


def tiny_random_model() -> torch.nn.Module:
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=256)  # fmt: skip
    return AutoModelForCausalLM.from_config(config)


class RandomTokens(torch.utils.data.Dataset):
    """Stands in for your tokenized dataset."""

    def __init__(self, rows: int, seq: int, vocab: int) -> None:
        self.ids = torch.randint(0, vocab, (rows, seq))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.ids[i]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-id", default="meta-llama/Llama-3.2-1B")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--lora-rank", type=int, default=0, help="0 = full fine-tuning")
    parser.add_argument("--stop-at", choices=("approaching", "threshold"), default="approaching")
    args = parser.parse_args()

    if args.model_id == "tiny-random":
        model, vocab = tiny_random_model(), 256
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model_id, dtype=torch.bfloat16)
        vocab = AutoTokenizer.from_pretrained(args.model_id).vocab_size
    if args.lora_rank:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=args.lora_rank, target_modules="all-linear"))

    checkpoints = "/opt/ml/checkpoints" if os.path.isdir("/opt/ml") else "out/checkpoints"  # synced to S3 by SageMaker
    training_args = TrainingArguments(output_dir=checkpoints, max_steps=args.max_steps, per_device_train_batch_size=4,
                                      save_steps=50, logging_steps=10, report_to=[])  # fmt: skip
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=RandomTokens(4096, args.seq, vocab),
        callbacks=[FlopsMeterCallback(stop_at=args.stop_at)],  # <- the opt-in
    )
    # Spot restarts and re-runs continue from the last checkpoint; the meter restores its totals from it.
    trainer.train(resume_from_checkpoint=get_last_checkpoint(checkpoints) if os.path.isdir(checkpoints) else None)


if __name__ == "__main__":
    main()
