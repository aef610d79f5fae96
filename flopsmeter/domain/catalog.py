"""Pretraining compute of well-known base models, with the basis and public source of each estimate.

Where estimates disagree (a developer's published figure, 6·N·D, GPU-hours x peak x utilisation) all are kept
and the classification uses the lowest: a lower pretraining figure gives a lower threshold, which is the
conservative choice. Each estimate says what it is (``method``):

* ``published``: the developer states the compute (Meta: 3.8e25 for Llama 3.1 405B).
* ``6ND``: our arithmetic, 6 x parameters (active parameters for a mixture of experts) x published tokens
  (guideline Annex A.2.2).
* ``hardware``: our arithmetic, published GPU-hours x the chip's dense BF16 peak x an assumed utilisation U
  (guideline Annex A.2.1; its worked examples use U = 0.5, Epoch AI uses 0.3-0.4; we use 0.4 unless noted).
* ``epoch``: Epoch AI's published estimate.
* ``guidance-example``: a figure AWS's guidance uses as an example; not a figure the developer published.
* ``inferred``: a guideline Annex A.3 worked example that we map to a named model because the figures match;
  the guideline itself names no model.

A model whose weights were initialised from another model (the DeepSeek-R1 distills, Phi-4-reasoning)
carries the compute of those weights (guideline para. 117: "the training compute used to train the combined
model weights should be included"); the distillation teacher's own training is excluded (para. 118), and the
small fine-tuning on top is not added (leaving it out keeps the figure, and so the threshold, lower).

Sources: ``shared/research/regulation.md`` Q4 and the model cards and reports named in each entry. Name
matching (variants, formats, revisions, JumpStart and Bedrock ids, S3 paths, derivatives) is
``flopsmeter.domain.catalog_names`` over ``flopsmeter.domain.model_names``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from flopsmeter.domain.hardware import H100
from flopsmeter.domain.numbers import exact
from flopsmeter.domain.thresholds import SYSTEMIC_RISK_TRAINING_FLOPS

ESTIMATE_MARGIN = Fraction(13, 10)  # guideline Annex A.2 (para. 120): estimates "accurate within ... 30%"
HARDWARE_UTILISATION = 0.4


@dataclass(frozen=True)
class ComputeEstimate:
    flops: float
    method: str  # published | 6ND | hardware | epoch | guidance-example | inferred
    note: str
    source: str


@dataclass(frozen=True)
class BaseModel:
    model_id: str
    parameters: float | None  # total parameters
    active_parameters: float | None  # mixture-of-experts: per token
    training_tokens: float | None
    estimates: tuple[ComputeEstimate, ...]
    systemic_risk: bool = False  # declared systemic-risk in the catalog (besides any estimate >= 1e25)
    aliases: tuple[str, ...] = ()
    initialised_from: str | None = None  # guideline para. 117: compute of the initial weights included
    note: str = ""

    @property
    def used_estimate(self) -> ComputeEstimate | None:
        """The estimate the classification uses: the lowest one (conservative threshold)."""
        return min(self.estimates, key=lambda e: exact(e.flops)) if self.estimates else None

    @property
    def pretrain_flops(self) -> float | None:
        used = self.used_estimate
        return used.flops if used else None

    @property
    def systemic(self) -> bool:
        """Systemic-risk base: flagged in the catalog, or any estimate at or above 1e25 (AI Act Art. 51(2))."""
        return self.systemic_risk or any(exact(e.flops) >= SYSTEMIC_RISK_TRAINING_FLOPS for e in self.estimates)

    def warnings(self) -> tuple[str, ...]:
        """What a record should say about this entry's estimates beyond the figure it uses."""
        if not self.estimates:
            return (f"catalog {self.model_id}: no public compute estimate; the unknown-compute threshold applies",)
        used = self.used_estimate
        notes = [
            f"catalog also lists {e.flops:.2e} ({e.method}) for {self.model_id}; the lower figure is used"
            for e in self.estimates
            if e is not used
        ]
        values = [exact(e.flops) for e in self.estimates]
        if min(values) < SYSTEMIC_RISK_TRAINING_FLOPS <= max(values):
            notes.append(
                f"estimates for {self.model_id} straddle 1e+25 ({float(min(values)):.2e} to {float(max(values)):.2e}):"
                " treated as a systemic-risk base (conservative); refer to legal review"
            )
        elif max(values) < SYSTEMIC_RISK_TRAINING_FLOPS <= max(values) * ESTIMATE_MARGIN:
            notes.append(
                f"the highest estimate for {self.model_id} ({float(max(values)):.2e}) is within the guideline's 30 % "
                "error margin of 1e+25: the base may be a systemic-risk model; refer to legal review"
            )
        return tuple(notes)


def _six_nd(params: float, tokens: float, source: str, what: str = "params") -> ComputeEstimate:
    return ComputeEstimate(6 * params * tokens, "6ND", f"6 x {params:.3g} {what} x {tokens:.3g} tokens", source)


def _hardware(
    gpu_hours: float, source: str, *, chip: str = "H100", tflops: float = H100.bf16_dense_tflops,
    utilisation: float = HARDWARE_UTILISATION, note: str = "",
) -> ComputeEstimate:  # fmt: skip
    flops = gpu_hours * 3600 * tflops * 1e12 * utilisation
    text = f"{gpu_hours / 1e6:.4g}M {chip}-hours x {tflops:g} TFLOP/s (dense BF16) x U={utilisation:g}"
    return ComputeEstimate(flops, "hardware", text + (f"; {note}" if note else ""), source)


_META_L3 = "Meta Llama 3 model card (github.com/meta-llama/llama3/blob/main/MODEL_CARD.md)"
_META_L31 = "Meta Llama 3.1 model card (github.com/meta-llama/llama-models, models/llama3_1/MODEL_CARD.md)"
_META_L32 = "Meta Llama 3.2 model card (github.com/meta-llama/llama-models, models/llama3_2/MODEL_CARD.md)"
_META_L33 = "Meta Llama 3.3 model card (github.com/meta-llama/llama-models, models/llama3_3/MODEL_CARD.md): 15T+ tokens, 7.0M H100-80GB hours"  # noqa: E501
_META_L4 = (
    "Meta Llama 4 model card (github.com/meta-llama/llama-models, models/llama4/MODEL_CARD.md): Scout 17B active / "
    "109B total, ~40T tokens, 5.0M H100-80GB hours; Maverick 17B active / 400B total, ~22T tokens, 2.38M hours"
)
_EPOCH = "Epoch AI, Notable AI Models database (epoch.ai/data)"
_GL_ANNEX = "Commission GPAI guideline C(2025) 5045, Annex A.3 worked examples"
_AWS_BLOG = "AWS ML blog: Navigating EU AI Act requirements for LLM fine-tuning on Amazon SageMaker AI (2026)"
_QWEN = "Qwen2.5 technical report (arXiv:2412.15115): 18T tokens; parameter counts from the Qwen2.5 model cards"
_QWEN_MATH = (
    "Qwen2.5-Math technical report (arXiv:2409.12122): Qwen2.5 bases continued on Qwen Math Corpus v2 (1T tokens)"  # noqa: E501
)
_QWEN3 = (
    "Qwen3 technical report (arXiv:2505.09388): 36T pretraining tokens; parameter counts from the Qwen3 model cards"  # noqa: E501
)
_GEMMA = "Gemma 2 technical report (arXiv:2408.00118): 2T / 8T / 13T tokens"
_GEMMA3 = "Gemma 3 technical report (arXiv:2503.19786): 2T / 4T / 12T / 14T tokens for 1B / 4B / 12B / 27B"
_FALCON = "Falcon series paper (arXiv:2311.16867) and model cards"
_PHI = "Phi-3 technical report (arXiv:2404.14219)"
_PHI4 = "Phi-4 technical report (arXiv:2412.08905) and model card: 14.7B, 9.8T tokens, 1920 H100-80G for 21 days"
_GPT_OSS = (
    "gpt-oss-120b & gpt-oss-20b model card (OpenAI, arXiv:2508.10925): 116.8B total / 5.1B active and 20.9B / 3.6B; "
    "gpt-oss-120b took 2.1M H100-hours, gpt-oss-20b 'almost 10x fewer'; tokens not disclosed ('trillions')"
)
_MISTRAL_SMALL3 = (
    "Mistral AI, 'Mistral Small 3' (mistral.ai/news/mistral-small-3, 2025-01-30): 24B; tokens not disclosed"
)
_MISTRAL_MEDIUM3 = "Mistral AI, 'Mistral Medium 3' announcement (mistral.ai/news/mistral-medium-3, 2025-05-07): size and tokens not disclosed"  # noqa: E501
_DSV3 = "DeepSeek-V3 technical report (arXiv:2412.19437): 14.8T tokens, 37B active, 2.664M H800-hours"
_R1 = (
    "DeepSeek-R1 report (arXiv:2501.12948), distillation section and README: Qwen2.5-Math-1.5B, Qwen2.5-Math-7B, "
    "Qwen2.5-14B, Qwen2.5-32B, Llama-3.1-8B and Llama-3.3-70B-Instruct fine-tuned on 800k R1-generated samples"
)


def _entries() -> tuple[BaseModel, ...]:
    models: dict[str, BaseModel] = {}

    def add(model: BaseModel) -> None:
        models[model.model_id] = model

    def initialised(model_id: str, base_id: str, source: str, *, aliases: tuple[str, ...] = ()) -> None:
        """A model whose weights start from ``base_id``: it carries the base's compute (guideline para. 117)."""
        base = models[base_id]
        estimates = tuple(
            replace(e, note=f"{e.note}; weights initialised from {base_id} (guideline para. 117)")
            for e in base.estimates
        )
        add(BaseModel(model_id, base.parameters, base.active_parameters, base.training_tokens, estimates,
                      base.systemic_risk, aliases, initialised_from=base_id,
                      note=f"fine-tuned from {base_id}; source: {source}"))  # fmt: skip

    for entry in _ORIGINALS:
        add(entry)
    initialised("Qwen/Qwen2.5-Math-1.5B", "Qwen/Qwen2.5-1.5B", _QWEN_MATH + " (the math tokens are not added)")
    initialised("Qwen/Qwen2.5-Math-7B", "Qwen/Qwen2.5-7B", _QWEN_MATH + " (the math tokens are not added)")
    for name, base in (
        ("DeepSeek-R1-Distill-Qwen-1.5B", "Qwen/Qwen2.5-Math-1.5B"),
        ("DeepSeek-R1-Distill-Qwen-7B", "Qwen/Qwen2.5-Math-7B"),
        ("DeepSeek-R1-Distill-Llama-8B", "meta-llama/Llama-3.1-8B"),
        ("DeepSeek-R1-Distill-Qwen-14B", "Qwen/Qwen2.5-14B"),
        ("DeepSeek-R1-Distill-Qwen-32B", "Qwen/Qwen2.5-32B"),
        ("DeepSeek-R1-Distill-Llama-70B", "meta-llama/Llama-3.3-70B"),  # the Instruct release; see that entry
    ):
        initialised(f"deepseek-ai/{name}", base, _R1)
    initialised("deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V3", _R1 + "; R1's RL compute is not added")
    initialised("microsoft/Phi-4-reasoning", "microsoft/phi-4", "Phi-4-reasoning technical report (arXiv:2504.21318)",
                aliases=("phi-4-reasoning-plus",))  # fmt: skip
    return tuple(models.values())


_ORIGINALS: tuple[BaseModel, ...] = (
    # ---- Meta Llama ---------------------------------------------------------------------------------------
    BaseModel(
        "meta-llama/Meta-Llama-3-8B",
        8.03e9,
        None,
        15e12,
        (_six_nd(8.03e9, 15e12, _META_L3), _hardware(1.3e6, _META_L3)),
    ),
    BaseModel(
        "meta-llama/Meta-Llama-3-70B",
        70.6e9,
        None,
        15e12,
        (
            ComputeEstimate(
                1.5e24,
                "guidance-example",
                "used as an example ('estimated minimum pretraining compute') in "
                "AWS's guidance; not a figure Meta published",
                _AWS_BLOG,
            ),
            _six_nd(70.6e9, 15e12, _META_L3),
            ComputeEstimate(7.86e24, "epoch", "Epoch AI geometric mean of 6ND and 6.4M H100-hours", _EPOCH),
        ),
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
    ),
    BaseModel(
        "meta-llama/Llama-3.1-70B",
        70.6e9,
        None,
        15e12,
        (_six_nd(70.6e9, 15e12, _META_L31), _hardware(7.0e6, _META_L31)),
    ),
    BaseModel(
        "meta-llama/Llama-3.1-405B",
        405e9,
        None,
        15.6e12,
        (
            ComputeEstimate(3.8e25, "published", "Meta: 3.8 x 10^25 FLOPs", _META_L31),
            _six_nd(405e9, 15.6e12, _META_L31),
            _hardware(30.84e6, _META_L31),
        ),
        systemic_risk=True,
    ),
    BaseModel(
        "meta-llama/Llama-3.2-1B",
        1.23e9,
        None,
        9e12,
        (
            _six_nd(1.23e9, 9e12, _META_L32),
            ComputeEstimate(
                6.5e23,
                "inferred",
                "guideline Annex A.3 Model H (370k H100-hours x 989 TFLOP/s x U=0.5); "
                "mapping Model H to Llama 3.2 1B is our inference from the model card's 370k hours",
                _GL_ANNEX,
            ),
        ),
    ),
    BaseModel(
        "meta-llama/Llama-3.2-3B",
        3.21e9,
        None,
        9e12,
        (_six_nd(3.21e9, 9e12, _META_L32), _hardware(460e3, _META_L32, utilisation=0.5)),
    ),
    BaseModel(
        "meta-llama/Llama-3.3-70B",
        70.6e9,
        None,
        15e12,
        (_six_nd(70.6e9, 15e12, _META_L33), _hardware(7.0e6, _META_L33)),
        note="Meta released only the instruction-tuned 3.3 70B; this entry is its pretraining",
    ),
    BaseModel(
        "meta-llama/Llama-4-Scout-17B-16E",
        109e9,
        17e9,
        40e12,
        (
            _six_nd(17e9, 40e12, _META_L4, "active params"),
            _hardware(5.0e6, _META_L4, note="the card says FP8 training; the BF16 peak gives the lower figure"),
        ),
        note="co-distilled from Llama 4 Behemoth; the teacher's compute is not included (guideline para. 118)",
    ),
    BaseModel(
        "meta-llama/Llama-4-Maverick-17B-128E",
        400e9,
        17e9,
        22e12,
        (
            _six_nd(17e9, 22e12, _META_L4, "active params"),
            _hardware(2.38e6, _META_L4, note="the card says FP8 training; the BF16 peak gives the lower figure"),
        ),
        note="co-distilled from Llama 4 Behemoth; the teacher's compute is not included (guideline para. 118)",
    ),
    # ---- Mistral ------------------------------------------------------------------------------------------
    BaseModel("mistralai/Mistral-7B-v0.1", 7.3e9, None, None, (), aliases=("mistral-7b",)),
    BaseModel("mistralai/Mixtral-8x7B-v0.1", 46.7e9, 12.9e9, None, (), aliases=("mixtral-8x7b",)),
    BaseModel(
        "mistralai/Mistral-Small-24B-Base-2501",
        23.6e9,
        None,
        None,
        (),
        aliases=("mistral-small-3", "mistral-small-24b", "mistral-small-3.1-24b", "mistral-small-3.2-24b"),
        note=_MISTRAL_SMALL3,
    ),
    BaseModel(
        "mistralai/Mistral-Medium-3", None, None, None, (), aliases=("mistral-medium-2505",), note=_MISTRAL_MEDIUM3
    ),
    # ---- Qwen -----------------------------------------------------------------------------------------------
    BaseModel("Qwen/Qwen2.5-1.5B", 1.54e9, None, 18e12, (_six_nd(1.54e9, 18e12, _QWEN),)),
    BaseModel("Qwen/Qwen2.5-7B", 7.61e9, None, 18e12, (_six_nd(7.61e9, 18e12, _QWEN),)),
    BaseModel("Qwen/Qwen2.5-14B", 14.7e9, None, 18e12, (_six_nd(14.7e9, 18e12, _QWEN),)),
    BaseModel("Qwen/Qwen2.5-32B", 32.5e9, None, 18e12, (_six_nd(32.5e9, 18e12, _QWEN),)),
    BaseModel("Qwen/Qwen2.5-72B", 72.7e9, None, 18e12, (_six_nd(72.7e9, 18e12, _QWEN),)),
    *(
        BaseModel(f"Qwen/Qwen3-{size}", params, None, 36e12, (_six_nd(params, 36e12, _QWEN3),))
        for size, params in (
            ("0.6B", 0.6e9),
            ("1.7B", 1.7e9),
            ("4B", 4.0e9),
            ("8B", 8.2e9),
            ("14B", 14.8e9),
            ("32B", 32.8e9),
        )  # fmt: skip
    ),
    BaseModel("Qwen/Qwen3-30B-A3B", 30.5e9, 3.3e9, 36e12, (_six_nd(3.3e9, 36e12, _QWEN3, "active params"),)),
    BaseModel("Qwen/Qwen3-235B-A22B", 235e9, 22e9, 36e12, (_six_nd(22e9, 36e12, _QWEN3, "active params"),)),
    # ---- Google Gemma -----------------------------------------------------------------------------------
    BaseModel("google/gemma-2-2b", 2.6e9, None, 2e12, (_six_nd(2.6e9, 2e12, _GEMMA),)),
    BaseModel("google/gemma-2-9b", 9.24e9, None, 8e12, (_six_nd(9.24e9, 8e12, _GEMMA),)),
    BaseModel("google/gemma-2-27b", 27.2e9, None, 13e12, (_six_nd(27.2e9, 13e12, _GEMMA),)),
    *(
        BaseModel(
            f"google/gemma-3-{size}-pt",
            params,
            None,
            tokens,
            (_six_nd(params, tokens, _GEMMA3),),
            note="pretrained with knowledge distillation; the teacher's compute is not included",
        )
        for size, params, tokens in (
            ("1b", 1.0e9, 2e12),
            ("4b", 4.3e9, 4e12),
            ("12b", 12.2e9, 12e12),
            ("27b", 27.4e9, 14e12),
        )
    ),  # fmt: skip
    # ---- Falcon, Phi, gpt-oss, DeepSeek -------------------------------------------------------------------
    BaseModel("tiiuae/falcon-7b", 7e9, None, 1.5e12, (_six_nd(7e9, 1.5e12, _FALCON),)),
    BaseModel(
        "tiiuae/falcon-40b",
        40e9,
        None,
        1e12,
        (
            _six_nd(40e9, 1e12, _FALCON),
            ComputeEstimate(2.42e23, "published", "2,800 petaflop/s-days (Falcon paper)", _FALCON),
        ),
    ),
    BaseModel("tiiuae/falcon-180B", 180e9, None, 3.5e12, (_six_nd(180e9, 3.5e12, _FALCON),)),
    BaseModel(
        "microsoft/Phi-3-mini-4k-instruct",
        3.8e9,
        None,
        3.3e12,
        (
            _six_nd(3.8e9, 3.3e12, _PHI),
            ComputeEstimate(
                7.5e22,
                "inferred",
                "guideline Annex A.3 Model A (3.8B params, 3.3T tokens); mapping Model A "
                "to Phi-3-mini is our inference from the matching figures",
                _GL_ANNEX,
            ),
        ),
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
        "microsoft/phi-4", 14.7e9, None, 9.8e12, (_six_nd(14.7e9, 9.8e12, _PHI4), _hardware(1920 * 21 * 24, _PHI4))
    ),
    BaseModel("openai/gpt-oss-120b", 116.8e9, 5.1e9, None, (_hardware(2.1e6, _GPT_OSS),)),
    BaseModel(
        "openai/gpt-oss-20b",
        20.9e9,
        3.6e9,
        None,
        (_hardware(0.21e6, _GPT_OSS, note="0.21M hours is our inference from 'almost 10x fewer' than 2.1M"),),
    ),
    BaseModel(
        "deepseek-ai/DeepSeek-V3",
        671e9,
        37e9,
        14.8e12,
        (
            _six_nd(37e9, 14.8e12, _DSV3, "active params"),
            _hardware(2.664e6, _DSV3, chip="H800", utilisation=1.0, note="U=1: an upper bound, not an estimate of use"),
        ),
        aliases=("deepseek-v3-base",),
    ),
)

BASE_MODELS: tuple[BaseModel, ...] = _entries()
