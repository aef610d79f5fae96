"""Tiny end-to-end fine-tuning runs through TRL and ``Trainer`` on CPU, next to their ground truth.

Each run builds a random-init model from a config (nothing is downloaded), a word-level tokenizer from the
``tokenizers`` library, a few rows of text, and trains for a few optimizer steps with ``FlopsMeterCallback``.
The whole ``trainer.train()`` runs inside ``FlopCounterMode`` with the formulas torch lacks (``aten.addmm_`` for
TRL's fused LM head; ``flopsmeter.training.flop_formulas``) and eager attention, so it sees every matmul the job
executes. Shared by ``bench/accuracy.py`` (the accuracy rows) and the TRL tests.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.tiny_models import build, llama_config

WORDS = 200
VOCAB = WORDS + 4  # + <pad> <eos> <bos> <unk>


def tokenizer() -> Any:
    """A word-level tokenizer over ``w0 .. w199`` (whitespace split), with pad / eos / bos / unk."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, **{f"w{i}": i + 4 for i in range(WORDS)}}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                   unk_token="<unk>")  # fmt: skip


def text(rng: Any, low: int, high: int) -> str:
    return " ".join(f"w{rng.randrange(WORDS)}" for _ in range(rng.randrange(low, high)))


def tiny_config(**overrides: Any) -> Any:
    return llama_config(**{"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "inter": 128, "vocab": VOCAB,
                           **overrides})  # fmt: skip


@dataclass
class RunResult:
    measured_flops: float  # FlopCounterMode over the whole trainer.train()
    document: dict[str, Any]  # flops_meter.json
    stdout: str
    trainer: Any = None

    @property
    def counted(self) -> float:
        return float(self.document["metered_flops"])

    @property
    def executed(self) -> float:
        """counted + recompute: what the hardware ran."""
        return float(self.document["metered_flops"]) + float(self.document["recompute_flops"])

    @property
    def error_pct(self) -> float:
        return (self.executed / self.measured_flops - 1) * 100


@dataclass
class Run:
    name: str
    make: Callable[[Path, Any], Any]  # (output dir, callback) -> trainer
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def run(make: Callable[[Path, Any], Any], **options: Any) -> RunResult:
    """Build the trainer with a ``FlopsMeterCallback`` and train it inside the ground-truth counter."""
    from flopsmeter.training.callback import FlopsMeterCallback
    from flopsmeter.training.flop_formulas import flop_counter

    out = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        meter_dir = Path(tmp) / "meter"
        callback = FlopsMeterCallback(output_dir=str(meter_dir), stdout=out, cloudwatch=False, handle_signals=False,
                                      emit_every_s=3600, **options)  # fmt: skip
        trainer = make(Path(tmp), callback)
        with flop_counter() as counter:
            trainer.train()
        import json

        document = json.loads((meter_dir / "flops_meter.json").read_text())
    return RunResult(float(counter.get_total_flops()), document, out.getvalue(), trainer)


def _args(cls: Any, out: Path, **kwargs: Any) -> Any:
    base = {"output_dir": str(out / "trainer"), "report_to": [], "use_cpu": True, "max_steps": 3,
            "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2, "logging_steps": 100,
            "save_strategy": "no", "learning_rate": 1e-4, "seed": 0, "disable_tqdm": True}  # fmt: skip
    return cls(**{**base, **kwargs})


# ---- SFT -------------------------------------------------------------------------------------------------------
def sft(*, packing: bool = False, peft_config: Any = None, rows: int = 24, model: Any = None) -> Callable[..., Any]:
    def make(out: Path, callback: Any) -> Any:
        import random

        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        rng = random.Random(0)
        data = Dataset.from_dict({"text": [text(rng, 8, 40) for _ in range(rows)]})
        args = _args(SFTConfig, out, packing=packing, max_length=64, dataset_num_proc=None,
                     padding_free=packing)  # fmt: skip
        return SFTTrainer(model=model if model is not None else build(tiny_config()), args=args, train_dataset=data,
                          processing_class=tokenizer(), callbacks=[callback], peft_config=peft_config)  # fmt: skip

    return make


# ---- DPO -------------------------------------------------------------------------------------------------------
def dpo(*, rows: int = 16, peft: bool = False) -> Callable[..., Any]:
    """DPO with a separate reference model, or (``peft``) a LoRA policy whose reference is itself, adapters off."""

    def make(out: Path, callback: Any) -> Any:
        import random

        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        rng = random.Random(1)
        data = Dataset.from_dict({
            "prompt": [text(rng, 4, 12) for _ in range(rows)],
            "chosen": [text(rng, 3, 16) for _ in range(rows)],
            "rejected": [text(rng, 3, 16) for _ in range(rows)],
        })  # fmt: skip
        args = _args(DPOConfig, out, max_length=48)
        if peft:
            from peft import LoraConfig

            return DPOTrainer(
                model=build(tiny_config()),
                args=args,
                train_dataset=data,
                processing_class=tokenizer(),
                callbacks=[callback],
                peft_config=LoraConfig(r=8, target_modules=["q_proj", "v_proj"]),
            )
        return DPOTrainer(model=build(tiny_config()), ref_model=build(tiny_config(), seed=1), args=args,
                          train_dataset=data, processing_class=tokenizer(), callbacks=[callback])  # fmt: skip

    return make


# ---- GRPO ------------------------------------------------------------------------------------------------------
def length_reward(completions: list[Any], **_: Any) -> list[float]:
    return [float(len(str(c))) / 100 for c in completions]


def grpo(*, rows: int = 8, reward_model: bool = False, completion: int = 12, beta: float = 0.0) -> Callable[..., Any]:
    """GRPO with the policy's own generate(); ``beta > 0`` adds TRL's reference model (loaded from a saved copy)."""

    def make(out: Path, callback: Any) -> Any:
        import random

        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        rng = random.Random(2)
        data = Dataset.from_dict({"prompt": [text(rng, 4, 10) for _ in range(rows)]})
        args = _args(GRPOConfig, out, per_device_train_batch_size=4, num_generations=4,
                     max_completion_length=completion, gradient_accumulation_steps=1, beta=beta,
                     model_init_kwargs={"attn_implementation": "eager"})  # fmt: skip
        build(tiny_config()).save_pretrained(out / "policy")  # TRL builds the reference from the policy's path
        rewards: list[Any] = [length_reward]
        if reward_model:
            rewards.append(reward_classifier())
        return GRPOTrainer(model=str(out / "policy"), reward_funcs=rewards, args=args, train_dataset=data,
                           processing_class=tokenizer(), callbacks=[callback],
                           reward_processing_classes=[None] + [tokenizer()] * reward_model)  # fmt: skip

    return make


def reward_classifier() -> Any:
    """A tiny reward model (sequence classification, one label) with eager attention."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(3)
    config = tiny_config()
    config.num_labels = 1
    config.pad_token_id = 0
    return AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")


# ---- plain Trainer: classification, LoRA subset, architectures measured on meta ----------------------------------
class ClassificationData:
    """Map-style rows of token ids with a class label."""

    def __init__(self, rows: int, *, seq: int = 32, labels: int = 3, seed: int = 0) -> None:
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(4, VOCAB, (rows, seq), generator=gen)
        self.labels = torch.randint(0, labels, (rows,), generator=gen)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "attention_mask": self.ids[i].new_ones(self.ids[i].shape),
                "labels": self.labels[i]}  # fmt: skip


def sequence_classification(*, labels: int = 3) -> Callable[..., Any]:
    def make(out: Path, callback: Any) -> Any:
        import torch
        from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

        torch.manual_seed(0)
        config = tiny_config()
        config.num_labels = labels
        config.pad_token_id = 0
        model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
        return Trainer(model=model, args=_args(TrainingArguments, out), train_dataset=ClassificationData(16),
                       callbacks=[callback])  # fmt: skip

    return make


def causal_lm(model_factory: Callable[[], Any], *, seq: int = 32) -> Callable[..., Any]:
    """Plain ``Trainer`` on random token rows for any causal LM ``model_factory`` builds."""

    def make(out: Path, callback: Any) -> Any:
        from transformers import Trainer, TrainingArguments

        from tests.support.tiny_models import TokenDataset

        model = model_factory()
        data = TokenDataset(16, seq=seq, pad_every=3)
        data.ids = data.ids % model.config.vocab_size
        return Trainer(model=model, args=_args(TrainingArguments, out), train_dataset=data, callbacks=[callback])

    return make


def lora_subset() -> Any:
    """LoRA on layers 1 and 3 of 4 (``layers_to_transform``), rank 8 on q/v and rank 4 on o (``rank_pattern``)."""
    from peft import LoraConfig, get_peft_model

    model = build(tiny_config(layers=4))
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"], layers_to_transform=[1, 3],
                        rank_pattern={"o_proj": 4})  # fmt: skip
    return get_peft_model(model, config)


def mla_model() -> Any:
    """A DeepSeek-V2-Lite-shaped model, all layers dense: multi-head latent attention (outside formula arch-v1)."""
    import torch
    from transformers import AutoModelForCausalLM, DeepseekV2Config

    torch.manual_seed(0)
    config = DeepseekV2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=16,
                              q_lora_rank=None, qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16,
                              first_k_dense_replace=2, n_routed_experts=4, num_experts_per_tok=2,
                              max_position_embeddings=512, tie_word_embeddings=False)  # fmt: skip
    return AutoModelForCausalLM.from_config(config, attn_implementation="eager")


def deepseek_v3_model() -> Any:
    """A DeepSeek-V3-shaped model: multi-head latent attention and routed + shared experts (eager experts)."""
    import torch
    from transformers import AutoModelForCausalLM, DeepseekV3Config

    torch.manual_seed(0)
    config = DeepseekV3Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4,
                              num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1, kv_lora_rank=16,
                              q_lora_rank=32, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=16, n_group=1,
                              topk_group=1, max_position_embeddings=512)  # fmt: skip
    return AutoModelForCausalLM.from_config(config, attn_implementation="eager", experts_implementation="eager")
