"""Our FLOPs formula, 6·N·D and the AWS sample's formula against FlopCounterMode on tiny real models.

    python -m bench.formula_table              # JSON, one object per row
    python -m bench.formula_table --markdown   # the table in docs/formulas.md

Each row runs one forward + backward (eager attention, eager MoE experts) of a random-initialised
``transformers`` model under ``torch.utils.flop_counter.FlopCounterMode`` and compares. 6·N·D uses the
active parameters (MoE: top-k experts); the AWS sample uses (4·N_total + 2·N_trainable)·D with the real
trainable count after PEFT wrapping (the sample itself counts before wrapping, i.e. reports 6·N·D for LoRA).
"""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

import peft
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

from flopsmeter.domain.flops import flops_per_token
from flopsmeter.domain.methods import FineTuning
from flopsmeter.domain.reference import aws_sample_flops, six_nd_flops
from flopsmeter.domain.shape import ModelShape

VOCAB = 512
SEQ_LENS = (128, 512, 2048)


def _llama() -> Any:
    return transformers.LlamaConfig(hidden_size=128, intermediate_size=344, num_hidden_layers=4, num_attention_heads=8,
                                    num_key_value_heads=2, vocab_size=VOCAB, tie_word_embeddings=False)  # fmt: skip


def _mixtral() -> Any:
    return transformers.MixtralConfig(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
        vocab_size=VOCAB, num_local_experts=8, num_experts_per_tok=2,
    )  # fmt: skip


def _freeze_all_but(layer: int) -> Any:
    def prepare(model: Any) -> Any:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.model.layers[layer].parameters():
            p.requires_grad_(True)
        return model

    return prepare


def _lora(targets: Any) -> Any:
    return lambda m: peft.get_peft_model(m, peft.LoraConfig(r=8, target_modules=targets, lora_dropout=0.0))


ROWS = [
    ("llama-gqa full", _llama, FineTuning(), None, {}),
    ("llama-gqa lora q,v r8", _llama, FineTuning(method="lora", lora_rank=8), _lora(["q_proj", "v_proj"]), {}),
    ("llama-gqa lora all-linear r8", _llama,
     FineTuning(method="lora", lora_rank=8, lora_targets=frozenset({"all-linear"})), _lora("all-linear"), {}),
    ("llama-gqa spectrum layer 3", _llama, FineTuning(method="spectrum", trainable_layers=frozenset({3})),
     _freeze_all_but(3), {}),
    ("mixtral 8x top-2 full", _mixtral, FineTuning(), None, {"experts_implementation": "eager"}),
]  # fmt: skip


def measure(
    name: str, make_config: Any, tuning: FineTuning, prepare: Any, kwargs: dict[str, str]
) -> list[dict[str, Any]]:
    config = make_config()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager", **kwargs)
        if prepare is not None:
            model = prepare(model)
    model.train()
    shape = ModelShape.from_hf_config(config.to_dict())
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows = []
    for seq_len in SEQ_LENS:
        ids = torch.randint(0, VOCAB, (1, seq_len))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with FlopCounterMode(display=False) as counter:
                model(input_ids=ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)
        measured = float(counter.get_total_flops())
        fpt = flops_per_token(shape, seq_len, tuning)
        figures = {
            "ours": fpt.total * seq_len + fpt.per_forward_call,
            "six_nd": six_nd_flops(shape.active_params, seq_len),
            "aws_sample": aws_sample_flops(total, trainable, seq_len),
        }
        row: dict[str, Any] = {"model": name, "seq_len": seq_len, **figures, "measured": measured}
        row.update({f"{k}_error": v / measured - 1 for k, v in figures.items()})
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | seq_len | ours | 6·N·D | AWS sample | measured | ours err | 6·N·D err | AWS err |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['seq_len']} | {r['ours']:.4g} | {r['six_nd']:.4g} | {r['aws_sample']:.4g} | "
            f"{r['measured']:.4g} | {r['ours_error']:+.2%} | {r['six_nd_error']:+.1%} | {r['aws_sample_error']:+.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a markdown table instead of JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [row for spec in ROWS for row in measure(*spec)]
    print(markdown(rows) if args.markdown else json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
