"""Re-assessing a recorded job (pure): order of arrival never lowers a figure or an outcome (issue 23).

When a parent is recorded after a child that read its artifacts, the child is classified again on its larger
lineage. The new figure is never below the recorded one, and no policy's outcome falls below what the record said:
a record may have been raised by a rule the new figure alone would not trigger (an incomplete lineage, a bound).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from flopsmeter.domain.classification import Classification, Outcome, PolicyResult


def never_lower(new: Classification, recorded: Sequence[PolicyResult]) -> Classification:
    """``new`` with every policy's outcome at least the recorded one (a policy the record lacks stays as is)."""
    before = {r.policy: r for r in recorded}
    results = []
    for result in new.results:
        old = before.get(result.policy)
        if old is not None and old.outcome.severity > result.outcome.severity:
            basis = f"{result.basis}; kept at the recorded '{old.outcome.value}' (a re-assessment never lowers it)"
            result = replace(result, outcome=old.outcome, basis=basis)
        results.append(result)
    return replace(new, results=tuple(results))


def raised(new: Classification, recorded: Sequence[PolicyResult]) -> bool:
    """Did the re-assessment raise any policy's outcome above the recorded one?"""
    before = {r.policy: r.outcome for r in recorded}
    return any(r.outcome.severity > before.get(r.policy, Outcome.BELOW).severity for r in new.results)
