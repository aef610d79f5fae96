"""``flopsmeter reevaluate``: re-classify stored records under another (or a newer) threshold policy, read-only.

For the day a delegated act (AI Act Art. 51(3)) moves the constants: the stored records keep what was decided
then; this shows what the new reading would decide, record by record, and which outcomes change.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flopsmeter.audit.blocks import BlockInputs, job_obligations
from flopsmeter.audit.record import KNOWN_SCHEMA_VERSIONS, AuditRecord
from flopsmeter.compliance.layout import record_files
from flopsmeter.compliance.obligations_view import NOTIFICATION
from flopsmeter.domain.classification import PolicyResult, classify_against
from flopsmeter.domain.deadlines import due_text
from flopsmeter.domain.lineage import lineage_floor
from flopsmeter.domain.thresholds import DEFAULT_APPROACHING_FRACTION, ThresholdPolicy, get_policy, threshold_for
from flopsmeter.errors import FlopsMeterError


class PolicyFileError(FlopsMeterError):
    """A policy file that does not describe a usable ThresholdPolicy."""


def load_policy_file(path: Path) -> ThresholdPolicy:
    """A ThresholdPolicy from JSON (the dataclass's field names); thresholds must be finite and positive."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise PolicyFileError(f"{path}: {err}") from err
    names = {f.name for f in fields(ThresholdPolicy)}
    if not isinstance(data, dict) or set(data) - names:
        raise PolicyFileError(f"{path}: expected a JSON object with fields {sorted(names)}")
    try:
        policy = ThresholdPolicy(**data)
    except TypeError as err:
        raise PolicyFileError(f"{path}: {err}") from err
    numbers = [policy.relative_fraction, policy.unknown_threshold, policy.systemic_unknown_threshold]
    numbers += [v for v in (policy.relative_floor_pretrain, policy.systemic_known_pretrain) if v is not None]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in numbers):
        raise PolicyFileError(f"{path}: thresholds and fractions must be finite numbers > 0")
    return policy


def resolve_policy(policy_id: str | None, policy_file: Path | None) -> ThresholdPolicy:
    if policy_file is not None:
        return load_policy_file(policy_file)
    if policy_id is None:
        raise PolicyFileError("give --policy ID or --policy-file FILE")
    return get_policy(policy_id)


@dataclass(frozen=True)
class Reevaluation:
    key: str
    job: str
    flops: float
    flops_basis: str
    pretrain_flops: float | None
    stored_primary_policy: str
    stored_primary_outcome: str
    stored_outcome_this_policy: str | None  # the record's own result under the same policy id, if it has one
    policy: str
    scenario: str
    threshold: float
    ratio: float
    outcome: str
    obligations: dict[str, Any] | None = None  # issue 23: what this outcome triggers, the clock re-dated
    base_model: str | None = None

    @property
    def notification_due_at(self) -> str | None:
        return None if self.obligations is None else self.obligations.get("notification_due_at")

    @property
    def changed(self) -> bool:
        """The outcome differs from what the record decided (its primary policy's outcome)."""
        return self.outcome != self.stored_primary_outcome

    @property
    def drift(self) -> bool:
        """The record has a result under this policy id and it differs now (the policy's constants changed)."""
        return self.stored_outcome_this_policy is not None and self.stored_outcome_this_policy != self.outcome


@dataclass
class ReevaluationRun:
    policy: str
    results: list[Reevaluation] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (key, why it was not re-evaluated)

    @property
    def changes(self) -> list[Reevaluation]:
        return [r for r in self.results if r.changed]

    def transitions(self) -> dict[str, int]:
        counts = Counter(f"{r.stored_primary_outcome} -> {r.outcome}" for r in self.changes)
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "records": len(self.results),
            "changed": len(self.changes),
            "transitions": self.transitions(),
            "errors": [{"key": k, "error": e} for k, e in self.errors],
            "results": [{**asdict(r), "changed": r.changed} for r in self.results],
        }


def classified_value(record: AuditRecord) -> tuple[float, str]:
    """The FLOPs the stored classification used: the candidate that reproduces its primary ratio, else the larger."""
    primary = next((c for c in record.classifications if c.policy == record.primary_policy), record.classifications[0])
    used = primary.ratio * primary.threshold
    candidates = (
        ("lineage.cumulative_flops", record.lineage.cumulative_flops),
        ("flops.classified_flops", record.flops.classified_flops),
    )
    for name, value in candidates:
        if math.isclose(value, used, rel_tol=1e-9, abs_tol=0.0):
            return value, name
    return max(candidates, key=lambda c: c[1])[1], "lineage.cumulative_flops (ratio not reproducible; larger value)"


def reevaluate_record(
    key: str, record: AuditRecord, policy: ThresholdPolicy, approaching_fraction: float = DEFAULT_APPROACHING_FRACTION
) -> Reevaluation:
    value, basis = classified_value(record)
    pretrain = record.base_model.pretrain_flops
    threshold = threshold_for(policy, pretrain, systemic_risk_base=record.base_model.systemic_risk)
    result = classify_against(value, threshold, approaching_fraction)
    result = lineage_floor(result, record.lineage.status, record.lineage.incomplete_reasons)  # issue 18
    same = next((c.outcome for c in record.classifications if c.policy == policy.policy_id), None)
    return Reevaluation(
        key=key,
        job=record.job.name,
        flops=value,
        flops_basis=basis,
        pretrain_flops=pretrain,
        stored_primary_policy=record.primary_policy,
        stored_primary_outcome=record.outcome,
        stored_outcome_this_policy=same,
        policy=policy.policy_id,
        scenario=result.scenario.value,
        threshold=result.threshold,
        ratio=result.ratio,
        outcome=result.outcome.value,
        obligations=reevaluated_obligations(record, result),
        base_model=record.base_model.model_id,
    )


def reevaluation_clocks(run: ReevaluationRun) -> list[dict[str, Any]]:
    """The Art. 52(1) clocks the re-evaluated outcomes open, in the shape of ``query --deadlines`` rows."""
    clocks = []
    for r in run.results:
        o = r.obligations or {}
        if not o.get("notification_due_at"):
            continue
        item: dict[str, Any] = next((i for i in o.get("items", []) if i.get("obligation_id") == NOTIFICATION), {})
        clocks.append({"crossed_in_job": o.get("crossed_in_job"), "due_at": o["notification_due_at"],
                       "crossed_at": o.get("crossed_at"), "base_model": r.base_model, "cumulative_flops": r.flops,
                       "status": item.get("status"), "records": 1})  # fmt: skip
    return clocks


def reevaluated_obligations(record: AuditRecord, result: PolicyResult) -> dict[str, Any]:
    """The obligations the re-evaluated outcome triggers, the crossing re-dated from the record's own facts: its
    earlier crossing only when it was of the same or a lower threshold (``domain.obligations.ancestor_crossing``),
    else the earliest moment the hardware allows, else the job's (or its lineage's) start."""
    stored = record.obligations
    inputs = BlockInputs(
        established_outside_eu=bool(stored and stored.established_outside_eu),
        parent_crossed_at=stored.crossed_at if stored and stored.crossed_in_job != record.job.name else None,
        parent_crossed_threshold=stored.threshold if stored else None,
        parent_lineage_started_at=stored.lineage_started_at if stored else None,
    )
    block = job_obligations(record, inputs, [result])
    data = block.model_dump(mode="json")
    due = block.notification_due_at
    data["notification_due"] = due_text(due) if due else None
    data["commission_notification"] = any(i.obligation_id == NOTIFICATION for i in block.items)
    data["reevaluated_under"] = result.policy
    return data


def reevaluate(
    documents: Iterable[tuple[str, bytes]],
    policy: ThresholdPolicy,
    approaching_fraction: float = DEFAULT_APPROACHING_FRACTION,
) -> ReevaluationRun:
    """Re-classify ``(key, stored bytes)`` pairs; records that cannot be read are listed, never skipped silently."""
    if not 0 < approaching_fraction <= 1:
        raise PolicyFileError(f"approaching fraction must be in (0, 1], got {approaching_fraction!r}")
    run = ReevaluationRun(policy.policy_id)
    for key, body in documents:
        try:
            document = json.loads(body)
            version = document.get("schema_version") if isinstance(document, dict) else None
            if version not in KNOWN_SCHEMA_VERSIONS:
                run.errors.append((key, f"unknown schema_version {version!r}"))
                continue
            record = AuditRecord.model_validate(document)
        except (ValueError, ValidationError) as err:
            run.errors.append((key, f"not a valid record: {str(err).splitlines()[0]}"))
            continue
        run.results.append(reevaluate_record(key, record, policy, approaching_fraction))
    run.results.sort(key=lambda r: (not r.changed, -r.ratio, r.job))
    return run


def read_dir(root: Path) -> Iterable[tuple[str, bytes]]:
    """``(key, bytes)`` of every record file in a mirror or a flat folder of records (``layout``), in key order."""
    files = record_files(root)
    for key in sorted(files):
        yield key, files[key].path.read_bytes()
