"""The obligations a crossing triggers, on every surface that shows a crossing (issue 23, point 4).

``classify``, ``estimate`` and ``gate`` are pre-flight: a planned (or running) modification whose figure exceeds a
threshold is one where "it becomes known that it will be met" (AI Act Art. 52(1); guideline para. 30), so the clock
starts at the moment of the check, not at the end of training. ``reevaluate`` re-dates a stored record's crossing
under the other policy (``record_obligations``). Each gives the same JSON shape as a record's ``obligations`` block,
plus ``notification_due`` (the due date as Brussels reads it, with its zone), and the same lines for people.

Standard library only (the base install runs the pre-flight commands).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flopsmeter.domain.classification import Classification
from flopsmeter.domain.deadlines import brussels_text, due_text
from flopsmeter.domain.obligations import Crossing, ObligationsOnCrossing, lowest_exceeded, obligations_on_crossing
from flopsmeter.domain.pretrain import PretrainCompute
from flopsmeter.domain.times import to_utc

NOTIFICATION = "commission_notification"
PREFLIGHT_BASIS = (
    "pre-flight: the planned figure exceeds the threshold, so it is known that it will be met (AI Act Art. 52(1); "
    "guideline para. 30): the clock starts at this check"
)
PLANNED_RUN = "planned run"
ESTABLISHMENT_ASSUMED = (
    "the provider is taken to be established in the EU, so Art. 54 (an authorised representative) is not listed; "
    "pass --established-outside-eu if it is established outside the EU"
)


def preflight_obligations(
    result: Classification, pretrain: PretrainCompute, flops: float, now: datetime, *, established_outside_eu: bool
) -> dict[str, Any]:
    """What a pre-flight figure that exceeds triggers, the clock started ``now`` (para. 30); nothing when below."""
    lowest = lowest_exceeded(result.results)
    crossing = None if lowest is None else Crossing(to_utc(now), PREFLIGHT_BASIS, PLANNED_RUN, *lowest)
    found = obligations_on_crossing(
        crossing,
        systemic_risk_base=pretrain.systemic_risk,
        established_outside_eu=established_outside_eu,
        base_pretrain_flops=pretrain.flops,
        cumulative_flops=flops,
    )
    shown = obligations_json(found)
    if found.triggered and not established_outside_eu:
        shown["notes"].append(ESTABLISHMENT_ASSUMED)
    return shown


def obligations_json(found: ObligationsOnCrossing) -> dict[str, Any]:
    """The JSON of a record's ``obligations`` block, plus the due date in Brussels time."""
    crossing = found.crossing
    due = found.notification_due_at
    return {
        "triggered": found.triggered,
        "crossed_at": _iso(crossing.at if crossing else None),
        "crossed_at_basis": crossing.basis if crossing else None,
        "crossed_in_job": crossing.crossed_in_job if crossing else None,
        "threshold": crossing.threshold if crossing else None,
        "policies": list(crossing.policies) if crossing else [],
        "systemic_risk_base": found.systemic_risk_base,
        "established_outside_eu": found.established_outside_eu,
        "notification_due_at": _iso(due),
        "notification_due": due_text(due) if due else None,
        "items": [
            {
                "obligation_id": o.obligation_id,
                "article": o.article,
                "summary": o.summary,
                "applies": o.applies,
                "status": o.status.value,
                "due_at": _iso(o.due_at),
                "due": due_text(o.due_at) if o.due_at else None,
            }
            for o in found.obligations
        ],  # fmt: skip
        "commission_notification": NOTIFICATION in {o.obligation_id for o in found.obligations},
        "notes": list(found.notes),
    }


def obligation_lines(obligations: dict[str, Any] | None) -> list[str]:
    """The obligations for people: one line per item, the Art. 52(1) item with its due date and zone."""
    if not obligations or not obligations.get("triggered"):
        return ["Obligations: none triggered (no threshold exceeded)"]
    at = obligations.get("crossed_at")
    shown = brussels_text(datetime.fromisoformat(at.replace("Z", "+00:00"))) if isinstance(at, str) else "unknown"
    lines = [f"Obligations (crossing {shown}: {obligations.get('crossed_at_basis')}):"]
    for item in obligations.get("items", []):
        due = f"; due by {item['due']}" if item.get("due") else ""
        review = " [review]" if item.get("status") == "review" else ""
        lines.append(f"  - {item['obligation_id']}{review}: {item['article']}{due}")
    if obligations.get("notification_due"):
        lines.append(f"NOTIFY THE COMMISSION by {obligations['notification_due']} (AI Act Art. 52(1)).")
    lines += [f"Note: {note}" for note in obligations.get("notes") or []]  # what the pre-flight assumed
    return lines


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else to_utc(moment).isoformat().replace("+00:00", "Z")
