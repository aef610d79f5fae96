"""The pre-flight for configs the closed form does not cover: build the model on the ``meta`` device from its config
and measure it as the meter does (``meta.py``, ``seq2seq.py``), with no weights, no memory and no data.

Multi-head latent attention (DeepSeek-V2 / V3), hybrid state-space models, encoder-decoder models and any other
architecture transformers can build: one call of a few sequence lengths under ``FlopCounterMode``, the per-token
training and forward FLOPs at the run's sequence length read from the fit. Needs torch and transformers (the
``training`` extra); without them ``TorchUnavailable`` says so in one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flopsmeter.domain.errors import InvalidModelSpec
from flopsmeter.domain.methods import ALL_LINEAR, FineTuning

ATTENTION = "sdpa"  # transformers' default attention implementation (a fused kernel: its recompute is apart)
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer|block)\.(\d+)\.")


class TorchUnavailable(InvalidModelSpec):
    """Measuring on meta needs torch and transformers."""


@dataclass(frozen=True)
class MeasuredCost:
    """Per-token FLOPs of one sequence of ``seq_len`` tokens (counted; a fused kernel's recompute apart)."""

    training: float
    forward: float
    recompute: float
    basis: str
    total_params: int = 0
    trainable_params: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"training_per_token": self.training, "forward_per_token": self.forward,
                "recompute_per_token": self.recompute, "basis": self.basis}  # fmt: skip


def _libraries() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as err:
        raise TorchUnavailable(
            "this architecture is outside the closed form and is measured on the meta device, which needs torch and "
            "transformers: install the package's training extra ([training])"
        ) from err
    return torch, transformers


def build_on_meta(config: Mapping[str, Any], *, attention: str = ATTENTION) -> Any:
    """The model a Hugging Face ``config`` describes, on the meta device (raises ``InvalidModelSpec``)."""
    torch, transformers = _libraries()
    values = {k: v for k, v in config.items() if not k.startswith("_")}
    model_type = str(values.pop("model_type", "") or "")
    try:
        hf_config = transformers.AutoConfig.for_model(model_type, **values)
    except (ValueError, KeyError, TypeError) as err:
        what = model_type or "no model_type"
        raise InvalidModelSpec(f"transformers cannot read this config ({what}): {err}") from err
    auto = transformers.AutoModelForSeq2SeqLM if hf_config.is_encoder_decoder else transformers.AutoModelForCausalLM
    try:
        with torch.device("meta"):
            try:
                model = auto.from_config(hf_config, attn_implementation=attention)
            except ValueError:  # a model with one attention of its own (T5 before transformers 5.1)
                model = auto.from_config(hf_config, attn_implementation="eager")
    except Exception as err:  # an architecture transformers cannot build from this config
        raise InvalidModelSpec(f"cannot build {model_type} from its config: {type(err).__name__}: {err}") from err
    return model.train()


def _apply(model: Any, tuning: FineTuning) -> Any:
    """What the run trains, on the meta model: LoRA adapters (PEFT), or the layers a Spectrum-style run unfreezes."""
    if tuning.is_lora:
        from peft import LoraConfig, get_peft_model

        targets: Any = "all-linear" if ALL_LINEAR in tuning.lora_targets else sorted(tuning.lora_targets)
        model = get_peft_model(model, LoraConfig(r=tuning.lora_rank, target_modules=targets))
    elif tuning.method == "spectrum":
        for name, param in model.named_parameters():
            match = _LAYER.search(name)
            param.requires_grad_(match is not None and int(match.group(1)) in tuning.trainable_layers)
    if tuning.input_requires_grad and callable(getattr(model, "enable_input_require_grads", None)):
        model.enable_input_require_grads()
    return model


def measure_config(config: Mapping[str, Any], seq_len: int, tuning: FineTuning | None = None, *,
                   decoder_len: int | None = None) -> MeasuredCost:  # fmt: skip
    """Per-token FLOPs of ``config``'s model at ``seq_len`` tokens per sequence, measured on meta as the meter does
    (an encoder-decoder model: ``seq_len`` encoder and ``decoder_len`` decoder tokens, per encoder token)."""
    from flopsmeter.training.meta import MetaModel
    from flopsmeter.training.seq2seq import is_encoder_decoder
    from flopsmeter.training.seq2seq import measure as measure_seq2seq

    tuning = tuning or FineTuning()
    model = _apply(build_on_meta(config), tuning)
    meta = MetaModel(model)
    name = type(getattr(model, "get_base_model", lambda: model)()).__name__
    total = sum(int(p.numel()) for p in model.parameters())
    trainable = sum(int(p.numel()) for p in model.parameters() if p.requires_grad)
    basis = f"measured on the meta device ({name} built from the config, {tuning.method}, attention {ATTENTION})"
    if is_encoder_decoder(model):
        d = decoder_len or seq_len
        costs = measure_seq2seq(meta.clone, fused=meta.fused)
        recompute = costs.kernel_recompute.flops(1, seq_len, d)
        training = (costs.training.flops(1, seq_len, d) - recompute) / seq_len
        return MeasuredCost(training, costs.forward.flops(1, seq_len, d) / seq_len, recompute / seq_len,
                            f"{basis}; {d} decoder tokens per sequence", total, trainable)  # fmt: skip
    ran, forward_only = meta.training(), meta.forward()
    kernel = ran.kernel_recompute.constant + ran.kernel_recompute.per_position * seq_len
    return MeasuredCost(ran.per_token_at(seq_len) - kernel, forward_only.per_token_at(seq_len), kernel, basis, total,
                        trainable)  # fmt: skip
