"""Tiny end-to-end fine-tuning runs through TRL on CPU, next to their ground truth (``run``).

Each run builds a random-init model from a config (nothing is downloaded), a word-level tokenizer from the
``tokenizers`` library, a few rows of text, and trains for a few optimizer steps with ``FlopsMeterCallback``.
The trainer's construction and the whole ``trainer.train()`` run inside ``FlopCounterMode`` with the formulas torch
lacks (``aten.addmm_`` for TRL's fused LM head, SDPA on CPU, grouped-mm experts: ``flopsmeter.training.
flop_formulas``), so it sees every matmul the job executes, in the constructor too (precomputed reference
log-probs). Shared by ``bench/accuracy.py`` (the accuracy rows) and the TRL tests; plain ``Trainer`` runs are in
``tests.support.trainer_runs``.
"""

from __future__ import annotations

import io
import json
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


def run(make: Callable[[Path, Any], Any], *, late: bool = False, **options: Any) -> RunResult:
    """Build the trainer with a ``FlopsMeterCallback`` and train it, both inside the ground-truth counter.

    ``late``: the callback is added after the trainer is built (``trainer.add_callback``), as some users do."""
    from flopsmeter.training.callback import FlopsMeterCallback
    from flopsmeter.training.flop_formulas import flop_counter

    out = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        meter_dir = Path(tmp) / "meter"
        callback = FlopsMeterCallback(output_dir=str(meter_dir), stdout=out, cloudwatch=False, handle_signals=False,
                                      emit_every_s=3600, **options)  # fmt: skip
        with flop_counter() as counter:
            trainer = make(Path(tmp), _Late() if late else callback)
            if late:
                trainer.add_callback(callback)
            trainer.train()
        document = json.loads((meter_dir / "flops_meter.json").read_text())
    return RunResult(float(counter.get_total_flops()), document, out.getvalue(), trainer)


class _Late:
    """Stands in for the callback while the trainer is built (added afterwards): a no-op ``TrainerCallback``."""

    def __new__(cls) -> Any:
        from transformers import TrainerCallback

        return TrainerCallback()


def train_args(cls: Any, out: Path, **kwargs: Any) -> Any:
    base = {"output_dir": str(out / "trainer"), "report_to": [], "use_cpu": True, "max_steps": 3,
            "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2, "logging_steps": 100,
            "save_strategy": "no", "learning_rate": 1e-4, "seed": 0, "disable_tqdm": True}  # fmt: skip
    return cls(**{**base, **kwargs})


# ---- SFT -------------------------------------------------------------------------------------------------------
def sft(*, packing: bool = False, peft_config: Any = None, rows: int = 24, model: Any = None, attention: str = "eager",
        words: tuple[int, int] = (8, 40), max_length: int = 64) -> Callable[..., Any]:  # fmt: skip
    """SFT of rows of ``words`` words (at most ``max_length`` tokens), with ``attention`` (``sdpa``: the default)."""

    def make(out: Path, callback: Any) -> Any:
        import random

        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        rng = random.Random(0)
        data = Dataset.from_dict({"text": [text(rng, *words) for _ in range(rows)]})
        args = train_args(SFTConfig, out, packing=packing, max_length=max_length, dataset_num_proc=None,
                          padding_free=packing)  # fmt: skip
        policy = model if model is not None else build(tiny_config(), attention=attention)
        return SFTTrainer(model=policy, args=args, train_dataset=data, processing_class=tokenizer(),
                          callbacks=[callback], peft_config=peft_config)  # fmt: skip

    return make


# ---- DPO / KTO -------------------------------------------------------------------------------------------------
def preference_rows(rows: int, seed: int = 1) -> dict[str, list[str]]:
    import random

    rng = random.Random(seed)
    return {"prompt": [text(rng, 4, 12) for _ in range(rows)], "chosen": [text(rng, 3, 16) for _ in range(rows)],
            "rejected": [text(rng, 3, 16) for _ in range(rows)]}  # fmt: skip


def dpo(*, rows: int = 16, peft: bool = False, precompute: bool = False) -> Callable[..., Any]:
    """DPO with a separate reference model, or (``peft``) a LoRA policy whose reference is itself, adapters off;
    ``precompute``: the reference log-probs are computed in the trainer's constructor."""

    def make(out: Path, callback: Any) -> Any:

        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        data = Dataset.from_dict(preference_rows(rows))
        args = train_args(DPOConfig, out, max_length=48, precompute_ref_log_probs=precompute)
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


def kto(*, rows: int = 16, precompute: bool = False) -> Callable[..., Any]:
    """KTO with a separate reference model (desirable and undesirable completions; its KL term on mismatched pairs);
    ``precompute``: the reference log-probs are computed in the trainer's constructor."""

    def make(out: Path, callback: Any) -> Any:
        from datasets import Dataset
        from trl import KTOConfig, KTOTrainer

        pairs = preference_rows(rows, seed=4)
        data = Dataset.from_dict({"prompt": pairs["prompt"] * 2, "completion": pairs["chosen"] + pairs["rejected"],
                                  "label": [True] * rows + [False] * rows})  # fmt: skip
        args = train_args(KTOConfig, out, max_length=48, precompute_ref_log_probs=precompute,
                          per_device_train_batch_size=4)  # fmt: skip
        return KTOTrainer(model=build(tiny_config()), ref_model=build(tiny_config(), seed=1), args=args,
                          train_dataset=data, processing_class=tokenizer(), callbacks=[callback])  # fmt: skip

    return make


# ---- distillation ---------------------------------------------------------------------------------------------
def distillation(*, rows: int = 8, completion: int = 12) -> Callable[..., Any]:
    """TRL's ``DistillationTrainer``: on-policy completions by the student, a larger teacher; both backbones are
    called directly and the LM heads projected from their weights (the chunked divergence loss)."""

    def make(out: Path, callback: Any) -> Any:
        import random

        from datasets import Dataset
        from trl import DistillationConfig, DistillationTrainer

        rng = random.Random(5)
        data = Dataset.from_dict({"prompt": [text(rng, 4, 10) for _ in range(rows)]})
        args = train_args(DistillationConfig, out, max_completion_length=completion, per_device_train_batch_size=2)
        teacher = build(tiny_config(hidden=96, layers=3, inter=192), seed=7)
        return DistillationTrainer(model=build(tiny_config()), teacher_model=teacher, args=args, train_dataset=data,
                                   processing_class=tokenizer(), callbacks=[callback])  # fmt: skip

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
        args = train_args(GRPOConfig, out, per_device_train_batch_size=4, num_generations=4,
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
