"""Lineage in the audit record: the parents found, the cumulative figure, the incomplete-lineage rule applied to
the classification, and the lines of the alert that ask for a declaration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flopsmeter import contract
from flopsmeter.audit.record import AncestorLink, AuditRecord, Lineage
from flopsmeter.domain.classification import Classification
from flopsmeter.domain.lineage import LineageFigure, LineageStatus, apply_lineage_rule, lineage_flops
from flopsmeter.domain.lineage_graph import declared_stand_in, node_id
from flopsmeter.service.ancestry import ancestor_links
from flopsmeter.service.dependencies import Dependencies, ServiceConfig
from flopsmeter.service.facts import JobFacts
from flopsmeter.service.lineage import Lineages, resolve_lineage


@dataclass(frozen=True)
class JobLineage:
    found: Lineages
    figure: LineageFigure
    own_flops: float

    @property
    def cumulative_flops(self) -> float:
        return self.figure.cumulative_flops

    def classified(self, classification: Classification) -> Classification:
        """The classification with the incomplete-lineage rule applied (``flopsmeter.domain.lineage``)."""
        return apply_lineage_rule(classification, self.figure.status, self.found.reasons)

    def record(self, facts: JobFacts) -> Lineage:
        first = self.found.first
        incomplete = self.figure.status in (LineageStatus.INCOMPLETE, LineageStatus.DECLARED)
        return Lineage(
            parent_job=first.job if first else None,
            parent_record_key=first.record_key if first else None,
            own_flops=self.own_flops,
            parent_cumulative_flops=self.figure.parent_flops,
            cumulative_flops=self.figure.cumulative_flops,
            chain=self.found.chain,
            ancestors=self.ancestors(facts),
            status=self.figure.status.value,
            parents=self.found.links,
            incomplete_reasons=self.found.reasons if incomplete else [],
            declared_parent_flops=self.found.declared_parent_flops,
            model_package_group_arn=facts.lineage_io.model_package_group_arn,
            output_model_package_arn=facts.lineage_io.output_model_package_arn,
        )

    def ancestors(self, facts: JobFacts) -> list[AncestorLink]:
        """Every ancestor once, and the declared stand-in when a declaration covers what could not be read; their
        figures add up to the cumulative figure less the job's own."""
        links = ancestor_links(self.found.ancestry)
        stand_in = self.figure.parent_flops - self.found.ancestry.flops
        if self.figure.status is LineageStatus.DECLARED and stand_in > 0:
            links += ancestor_links((declared_stand_in(node_id(facts.arn, facts.name), stand_in),))
        return links


def job_lineage(
    facts: JobFacts, own_flops: float, deps: Dependencies, config: ServiceConfig, now: datetime
) -> JobLineage:
    found = resolve_lineage(
        facts,
        facts.lineage_io,
        jobs=deps.jobs,
        store=deps.store,
        now=now,
        max_wait_seconds=config.parent_max_wait_seconds,
    )
    figure = lineage_flops(
        own_flops,
        found.figures,
        found.declared_parent_flops,
        unread_inputs=found.unread_inputs,
        ancestry_flops=found.ancestry.flops,
    )
    return JobLineage(found, figure, own_flops)


def lineage_alert_lines(record: AuditRecord) -> list[str]:
    """What the alert says about an incomplete lineage, and the declaration it asks for."""
    lineage = record.lineage
    if lineage.status != LineageStatus.INCOMPLETE.value:
        return []
    return [
        "Lineage INCOMPLETE: " + "; ".join(lineage.incomplete_reasons),
        "The missing compute is not counted as zero: the job is classified at least 'approaching'. To classify it "
        f"on a figure, declare the cumulative FLOPs of what it starts from ({contract.TAG_PARENT_FLOPS} tag or "
        f"{contract.ENV_PARENT_FLOPS} environment variable) on this job's next run and on its children, or make "
        "the parent's record readable (organization mode reads member accounts' records).",
    ]
