"""The meter's cumulative totals, and how they travel with checkpoints so a resumed run loses nothing."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from flopsmeter.training.emitters import write_json_atomic

logger = logging.getLogger("flopsmeter.training")

STATE_FILE_NAME = "flops_meter_state.json"  # written into each checkpoint folder
STATE_VERSION = 1


OPTIONAL_FIELDS = ("update_flops", "reference_flops", "generation_flops", "reward_inference_flops",
                   "document_positions", "measured_excess_flops")  # fmt: skip  # added later: older states still load


@dataclass(frozen=True)
class Totals:
    """Global (all ranks) cumulative counts since the start of the run, resumes included."""

    steps: int = 0  # optimizer steps
    micro_steps: int = 0  # forward passes counted (summed over ranks)
    tokens: int = 0  # every token computed in update passes, padding included
    non_padding_tokens: int = 0
    token_positions: int = 0  # sum over tokens of the attention span (sequence length)
    flops: float = 0.0  # counted FLOPs: update + reference + generation + reward_inference (recompute excluded)
    recompute_flops: float = 0.0  # activation / LM-head recompute: recorded, never added
    seconds: float = 0.0  # metered wall time (for the hardware ceiling)
    update_flops: float = 0.0  # forward + backward of the passes that update the weights
    reference_flops: float = 0.0  # forward-only scoring passes: reference model, teacher, the policy's no-grad passes
    generation_flops: float = 0.0  # rollouts (the policy's generate(), or estimated from token counts)
    reward_inference_flops: float = 0.0  # reward models scoring rollouts (ambiguous in the guideline; included)
    document_positions: int = 0  # sum over tokens of their document's length (packed rows: per document)
    measured_excess_flops: float = 0.0  # work measured beyond the closed form (part of update_flops)

    def plus(self, **deltas: float) -> Totals:
        return replace(self, **{k: getattr(self, k) + v for k, v in deltas.items()})

    def breakdown(self) -> dict[str, float]:
        return {
            "update": self.update_flops,
            "reference": self.reference_flops,
            "generation": self.generation_flops,
            "reward_inference": self.reward_inference_flops,
            "recompute": self.recompute_flops,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Totals:
        """Validate a saved state: every field present (the later ones may be missing), a finite number >= 0."""
        if not isinstance(data, dict):
            raise ValueError("meter state must be a JSON object")
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = data.get(f.name)
            if raw is None and f.name in OPTIONAL_FIELDS:
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
                raise ValueError(f"meter state field {f.name!r} must be a finite number >= 0, got {raw!r}")
            values[f.name] = int(raw) if f.type == "int" else float(raw)
        if "update_flops" not in values:  # saved before the breakdown: everything counted was update
            values["update_flops"] = values["flops"]
        if "document_positions" not in values:
            values["document_positions"] = values["token_positions"]
        return cls(**values)


@dataclass(frozen=True)
class Gap:
    """What the totals are known to miss. It travels with checkpoints, so a later resume cannot forget it."""

    missing_steps: int = 0  # optimizer steps that ran but were never metered (a resume without saved totals)
    estimated_flops: float = 0.0  # their extrapolated FLOPs, included in the reported cumulative figure
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"missing_steps": self.missing_steps, "estimated_flops": self.estimated_flops,
                "reasons": list(self.reasons)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> Gap:
        """A saved gap; anything unreadable is still a gap (it can only make the figure less trusted)."""
        if data is None:
            return cls()
        unreadable = cls(reasons=(f"a checkpoint's record of missing meter totals is unreadable: {data!r:.200}",))
        if not isinstance(data, dict):
            return unreadable
        steps, flops, reasons = data.get("missing_steps"), data.get("estimated_flops"), data.get("reasons")
        if (
            isinstance(steps, bool)
            or not isinstance(steps, int)
            or steps < 0
            or isinstance(flops, bool)
            or not isinstance(flops, int | float)
            or not math.isfinite(flops)
            or flops < 0
            or not isinstance(reasons, list)
            or not all(isinstance(r, str) for r in reasons)
        ):
            return unreadable
        if not reasons and (steps or flops):
            reasons = ["a checkpoint recorded missing meter totals without a reason"]
        return cls(steps, float(flops), tuple(reasons))


def state_document(
    totals: Totals, *, formula_version: str, job_name: str | None, gap: Gap | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": STATE_VERSION,
        "totals": totals.as_dict(),
        "formula_version": formula_version,
        "training_job_name": job_name,
    }
    if gap is not None and gap.reasons:
        document["incomplete"] = gap.as_dict()  # optional key: version-1 states without it still load
    return document


def gap_from_document(document: dict[str, Any]) -> Gap:
    return Gap.from_dict(document.get("incomplete"))


def totals_from_document(document: Any) -> Totals:
    version = document.get("version") if isinstance(document, dict) else None
    if version != STATE_VERSION:
        raise ValueError(f"unsupported meter state (version {version!r}, expected {STATE_VERSION})")
    return Totals.from_dict(document.get("totals"))


def save_state(folder: str | Path, document: dict[str, Any]) -> Path:
    path = Path(folder) / STATE_FILE_NAME
    write_json_atomic(path, document)
    return path


def load_state(folder: str | Path) -> dict[str, Any] | None:
    """The saved state document in ``folder``, or None if there is none. A corrupt file raises ``ValueError``."""
    path = Path(folder) / STATE_FILE_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    totals_from_document(document)  # validate now, so callers get the error here
    return dict(document)
