"""The crossing alert inside the job: raised the moment the lineage's metered FLOPs go over a threshold.

The Art. 52(1) notification is due two weeks after the requirement "is met or it becomes known that it will be
met", and can fall due before training ends (guideline para. 30). So the meter does not wait for the classifier:
at the first synchronisation where prior + metered FLOPs are more than the lowest threshold of any policy (the
one crossed first, as the classifier's obligations use), rank 0 writes one ``flopsmeter:`` line with the crossing
moment and, for a systemic-risk base, the notification due date, and sends ``ThresholdCrossed`` = 1 to CloudWatch
with the crossing moment as its timestamp (an alarm on it reaches people at once; the classifier can read the
moment back). Once per run; never raises into training.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flopsmeter import contract
from flopsmeter.domain.numbers import exact
from flopsmeter.domain.obligations import Crossing, obligations_on_crossing
from flopsmeter.domain.pretrain import PretrainCompute
from flopsmeter.domain.thresholds import POLICIES, threshold_for
from flopsmeter.training.emitters import LINE_PREFIX

logger = logging.getLogger("flopsmeter.training")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CrossingAlert:
    crossed_at: datetime
    lineage_flops: float
    threshold: float
    policy: str
    systemic_risk_base: bool
    notification_due_at: datetime | None

    def line(self) -> str:
        """One stdout line (no field name the SageMaker MetricDefinitions of the totals match)."""
        due = _iso(self.notification_due_at) if self.notification_due_at else "none"
        return (
            f"{LINE_PREFIX} {contract.LINE_THRESHOLD_CROSSED}=1 lineage_flops={self.lineage_flops:.6e} "
            f"threshold={self.threshold:.6e} policy={self.policy} crossed_at={_iso(self.crossed_at)} "
            f"notification_due_at={due}"
        )

    def metric_data(self, job_name: str) -> list[dict[str, Any]]:
        return [
            {
                "MetricName": contract.METRIC_THRESHOLD_CROSSED,
                "Dimensions": [{"Name": contract.METRIC_DIMENSION, "Value": job_name}],
                "Value": 1.0,
                "Unit": "Count",
                "Timestamp": self.crossed_at,
            }
        ]


class CrossingWatch:
    """Watches the lineage's FLOPs against the lowest threshold of every policy; ``observe`` alerts once."""

    def __init__(
        self, pretrain: PretrainCompute, prior_flops: float, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        thresholds = [
            threshold_for(p, pretrain.flops, systemic_risk_base=pretrain.systemic_risk) for p in POLICIES.values()
        ]
        self.threshold = min(thresholds, key=lambda t: t.exact)
        self.pretrain = pretrain
        self.prior_flops = prior_flops
        self.clock = clock
        self.alert: CrossingAlert | None = None

    def crossed(self, total: float) -> bool:
        """More than the threshold; a total that is not a finite number counts as crossed (never silently below)."""
        return not math.isfinite(total) or exact(total) > self.threshold.exact

    def observe(self, reported_flops: float) -> CrossingAlert | None:
        """The alert at the first call where prior + ``reported_flops`` is more than the threshold, else None."""
        total = self.prior_flops + reported_flops
        if self.alert is not None or not self.crossed(total):
            return None
        now = self.clock()
        policy = self.threshold.policy_id
        result = obligations_on_crossing(
            Crossing(now, "metered FLOPs crossed during the run", "", self.threshold.value, (policy,)),
            systemic_risk_base=self.pretrain.systemic_risk,
            established_outside_eu=False,  # Art. 54 is the classifier's to state; the clock does not depend on it
            base_pretrain_flops=self.pretrain.flops,
            cumulative_flops=total if math.isfinite(total) else self.threshold.value,
        )
        self.alert = CrossingAlert(
            now, total, self.threshold.value, policy, self.pretrain.systemic_risk, result.notification_due_at
        )
        return self.alert

    def check(self, reported_flops: float, *, stdout: Any, cloudwatch: Any, job_name: str | None) -> None:
        """Observe and, on the crossing, write the line and send the metric (failures logged, never raised)."""
        alert = self.observe(reported_flops)
        if alert is None:
            return
        logger.warning("flops threshold crossed: %s", alert.line())
        if stdout is not None:
            stdout.write_line(alert.line())
        if cloudwatch is not None and job_name:
            cloudwatch.emit_data(alert.metric_data(job_name))
