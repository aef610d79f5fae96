"""Pretraining compute of well-known base models, with the basis and public source of each estimate.

Where estimates disagree (a published "minimum", 6·N·D, GPU-hours x peak x utilisation) all are kept
and the classification uses the lowest: a lower pretraining figure gives a lower threshold, which is
the conservative choice. Sources: ``shared/research/regulation.md`` Q4 (model cards, Epoch AI, the
Commission guideline's Annex A.3 worked examples, the AWS guidance).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComputeEstimate:
    flops: float
    method: str  # "6ND" | "published" | "hardware" | "epoch"
    note: str
    source: str


@dataclass(frozen=True)
class BaseModel:
    model_id: str
    parameters: float | None  # total parameters
    active_parameters: float | None  # mixture-of-experts: per token
    training_tokens: float | None
    estimates: tuple[ComputeEstimate, ...]
    systemic_risk: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def used_estimate(self) -> ComputeEstimate | None:
        """The estimate the classification uses: the lowest one (conservative threshold)."""
        return min(self.estimates, key=lambda e: e.flops) if self.estimates else None

    @property
    def pretrain_flops(self) -> float | None:
        used = self.used_estimate
        return used.flops if used else None


def _six_nd(params: float, tokens: float, source: str) -> ComputeEstimate:
    return ComputeEstimate(6 * params * tokens, "6ND", f"6 x {params:.3g} params x {tokens:.3g} tokens", source)


_META_L3 = "Meta Llama 3 model card (github.com/meta-llama/llama3/blob/main/MODEL_CARD.md)"
_META_L31 = "Meta Llama 3.1 model card (github.com/meta-llama/llama-models, models/llama3_1/MODEL_CARD.md)"
_META_L32 = "Meta Llama 3.2 model card (github.com/meta-llama/llama-models, models/llama3_2/MODEL_CARD.md)"
_EPOCH = "Epoch AI, Notable AI Models database (epoch.ai/data)"
_GL_ANNEX = "Commission GPAI guideline, Annex A.3 worked examples"
_QWEN = "Qwen2.5 technical report (arXiv:2412.15115): 18T tokens"
_GEMMA = "Gemma 2 technical report (arXiv:2408.00118): 2T / 8T / 13T tokens"
_FALCON = "Falcon series paper (arXiv:2311.16867) and model cards"
_PHI = "Phi-3 technical report (arXiv:2404.14219)"
_DSV3 = "DeepSeek-V3 technical report (arXiv:2412.19437): 14.8T tokens, 37B active, 2.664M H800-hours"

BASE_MODELS: tuple[BaseModel, ...] = (
    BaseModel(
        "meta-llama/Meta-Llama-3-8B",
        8.03e9,
        None,
        15e12,
        (
            _six_nd(8.03e9, 15e12, _META_L3),
            ComputeEstimate(1.9e24, "hardware", "1.3M H100-hours x 989 TFLOP/s x U=0.4", _META_L3),
        ),
        aliases=("llama-3-8b", "meta-llama-3-8b"),
    ),
    BaseModel(
        "meta-llama/Meta-Llama-3-70B",
        70.6e9,
        None,
        15e12,
        (
            ComputeEstimate(
                1.5e24,
                "published",
                "AWS guidance's 'estimated minimum' pretraining compute",
                "AWS ML blog: Navigating EU AI Act requirements for LLM fine-tuning on SageMaker AI",
            ),
            _six_nd(70.6e9, 15e12, _META_L3),
            ComputeEstimate(7.86e24, "epoch", "Epoch AI geometric mean of methods", _EPOCH),
        ),
        aliases=("llama-3-70b", "meta-llama-3-70b"),
    ),
    BaseModel(
        "meta-llama/Llama-3.1-8B",
        8.03e9,
        None,
        15e12,
        (
            _six_nd(8.03e9, 15e12, _META_L31),
            ComputeEstimate(1.22e24, "epoch", "Epoch AI estimate (1.46M H100-hours)", _EPOCH),
        ),
        aliases=("llama-3.1-8b", "meta-llama-3.1-8b"),
    ),
    BaseModel(
        "meta-llama/Llama-3.1-70B",
        70.6e9,
        None,
        15e12,
        (
            _six_nd(70.6e9, 15e12, _META_L31),
            ComputeEstimate(1.0e25, "hardware", "7.0M H100-hours x 989 TFLOP/s x U=0.4", _META_L31),
        ),
        aliases=("llama-3.1-70b", "meta-llama-3.1-70b"),
    ),
    BaseModel(
        "meta-llama/Llama-3.1-405B",
        405e9,
        None,
        15.6e12,
        (
            ComputeEstimate(3.8e25, "published", "Meta: 3.8 x 10^25 FLOPs", _META_L31),
            _six_nd(405e9, 15.6e12, _META_L31),
        ),
        systemic_risk=True,
        aliases=("llama-3.1-405b", "meta-llama-3.1-405b"),
    ),
    BaseModel(
        "meta-llama/Llama-3.2-1B",
        1.23e9,
        None,
        9e12,
        (
            _six_nd(1.23e9, 9e12, _META_L32),
            ComputeEstimate(6.5e23, "hardware", "370k H100-hours x 989 TFLOP/s x U=0.5 (guideline Model H)", _GL_ANNEX),
        ),
        aliases=("llama-3.2-1b",),
    ),
    BaseModel(
        "meta-llama/Llama-3.2-3B",
        3.21e9,
        None,
        9e12,
        (
            _six_nd(3.21e9, 9e12, _META_L32),
            ComputeEstimate(8.2e23, "hardware", "460k H100-hours x 989 TFLOP/s x U=0.5", _META_L32),
        ),
        aliases=("llama-3.2-3b",),
    ),
    BaseModel("mistralai/Mistral-7B-v0.1", 7.3e9, None, None, (), aliases=("mistral-7b",)),
    BaseModel("mistralai/Mixtral-8x7B-v0.1", 46.7e9, 12.9e9, None, (), aliases=("mixtral-8x7b",)),
    BaseModel("Qwen/Qwen2.5-7B", 7.61e9, None, 18e12, (_six_nd(7.61e9, 18e12, _QWEN),), aliases=("qwen2.5-7b",)),
    BaseModel("Qwen/Qwen2.5-72B", 72.7e9, None, 18e12, (_six_nd(72.7e9, 18e12, _QWEN),), aliases=("qwen2.5-72b",)),
    BaseModel("google/gemma-2-2b", 2.6e9, None, 2e12, (_six_nd(2.6e9, 2e12, _GEMMA),), aliases=("gemma-2-2b",)),
    BaseModel("google/gemma-2-9b", 9.24e9, None, 8e12, (_six_nd(9.24e9, 8e12, _GEMMA),), aliases=("gemma-2-9b",)),
    BaseModel("google/gemma-2-27b", 27.2e9, None, 13e12, (_six_nd(27.2e9, 13e12, _GEMMA),), aliases=("gemma-2-27b",)),
    BaseModel("tiiuae/falcon-7b", 7e9, None, 1.5e12, (_six_nd(7e9, 1.5e12, _FALCON),), aliases=("falcon-7b",)),
    BaseModel(
        "tiiuae/falcon-40b",
        40e9,
        None,
        1e12,
        (
            _six_nd(40e9, 1e12, _FALCON),
            ComputeEstimate(2.42e23, "published", "2,800 petaflop/s-days (Falcon paper, via Epoch AI)", _EPOCH),
        ),
        aliases=("falcon-40b",),
    ),
    BaseModel("tiiuae/falcon-180B", 180e9, None, 3.5e12, (_six_nd(180e9, 3.5e12, _FALCON),), aliases=("falcon-180b",)),
    BaseModel(
        "microsoft/Phi-3-mini-4k-instruct",
        3.8e9,
        None,
        3.3e12,
        (_six_nd(3.8e9, 3.3e12, _PHI), ComputeEstimate(7.5e22, "published", "guideline Annex A.3 Model A", _GL_ANNEX)),
        aliases=("phi-3-mini",),
    ),
    BaseModel(
        "microsoft/Phi-3-small-8k-instruct", 7e9, None, 4.8e12, (_six_nd(7e9, 4.8e12, _PHI),), aliases=("phi-3-small",)
    ),
    BaseModel(
        "microsoft/Phi-3-medium-4k-instruct",
        14e9,
        None,
        4.8e12,
        (_six_nd(14e9, 4.8e12, _PHI),),
        aliases=("phi-3-medium",),
    ),
    BaseModel(
        "deepseek-ai/DeepSeek-V3",
        671e9,
        37e9,
        14.8e12,
        (
            _six_nd(37e9, 14.8e12, _DSV3 + " (active parameters)"),
            ComputeEstimate(9.5e24, "hardware", "2.664M H800-hours x 989 TFLOP/s BF16 x U=1", _DSV3),
        ),
        aliases=("deepseek-v3",),
    ),
)

_INDEX: dict[str, BaseModel] = {}
for _model in BASE_MODELS:
    for _key in (_model.model_id, _model.model_id.split("/", 1)[-1], *_model.aliases):
        _INDEX[_key.lower()] = _model


def find_base_model(model_id: str | None) -> BaseModel | None:
    """Look up a base model by Hugging Face id, its name without the organisation, or an alias (any case)."""
    if not model_id:
        return None
    key = model_id.strip().lower()
    return _INDEX.get(key) or _INDEX.get(key.split("/", 1)[-1])
