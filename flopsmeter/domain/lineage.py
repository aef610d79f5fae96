"""Lineage rules (pure): where a job's parents are read from, how its cumulative FLOPs are made up, and what a
lineage that cannot be read completely is classified as.

A fine-tune split into several jobs must add up (guideline Annex A.1, ¶117: compute of weights a model starts
from is included in its cumulative compute). A job's parents are the jobs whose artifacts it starts from: named
explicitly (``FLOPSMETER_PARENT_JOB`` / ``flopsmeter:parent-job``: one job or several, comma-separated, for a merge),
or inferred from the S3 locations and model packages it reads (an input channel or checkpoint prefix that contains
other jobs' outputs links to each of them). Declared and inferred parents are counted together; only ``none``
removes the inferred ones. Their compute comes from their audit records, each ancestor once
(``flopsmeter.domain.lineage_graph``).

The incomplete-lineage rule. A parent that cannot be read (unknown to SageMaker, in another account or region
without a record there, an unreadable record, a parent whose own lineage is incomplete, or a parent without a
record whose hardware ceiling stood in for its own compute) is never counted as zero:

- when the job declares its parents' cumulative FLOPs (``FLOPSMETER_PARENT_FLOPS`` / ``flopsmeter:parent-flops``),
  the larger of that declaration and the sum of the parents that could be read stands in (status ``declared``);
- otherwise the lineage is ``incomplete``: the cumulative figure is the part that could be read (own + readable
  parents), and every policy whose outcome on it is ``below`` is raised to ``approaching`` - the missing parent
  may have used up any of the headroom, so the service never says "below" for it - while ``exceeds`` stays
  ``exceeds``. The record says why, and the alert asks for the declaration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from flopsmeter.domain.classification import Classification, Outcome, PolicyResult

MAX_PREFIX_DEPTH = 16  # ancestors of one input looked up in the index (longest first)
MAX_LOCATIONS = 32  # S3 locations and model packages looked up per job; more makes the lineage incomplete
MAX_CONTAINED_WRITERS = 8  # jobs whose outputs one input prefix may contain before the tool cannot decide
MAX_DECLARED_PARENTS = 8  # FLOPSMETER_PARENT_JOB=a,b,...: more is refused (one unresolved parent)
MAX_URI_LENGTH = 1100  # "s3://" + 63-character bucket + 1024-byte key
NO_PARENT = "none"  # FLOPSMETER_PARENT_JOB=none: the job declares that it starts from no earlier job
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?$", re.IGNORECASE)
_S3_IN_TEXT = re.compile(r"s3://[^\s\"',;\]\[{}()<>|]+", re.IGNORECASE)


class ParentSource(StrEnum):
    """How a parent was found."""

    DECLARED = "declared"  # FLOPSMETER_PARENT_JOB / flopsmeter:parent-job
    INPUT_CHANNEL = "input_channel"  # InputDataConfig[].DataSource.S3DataSource.S3Uri
    CHECKPOINT = "checkpoint"  # CheckpointConfig.S3Uri: a prefix an earlier job wrote its checkpoints to
    HYPERPARAMETER = "hyperparameter"  # a hyper-parameter value naming an S3 model path
    ENVIRONMENT = "environment"  # an environment value naming an S3 model path
    MODEL_PACKAGE = "model_package"  # ModelPackageConfig.SourceModelPackageArn (serverless customization)


# Sources whose whole prefix the job receives (SageMaker copies an S3Prefix channel and the checkpoint prefix in):
# a prefix that contains other jobs' outputs gives the job those outputs. A hyper-parameter or environment value is
# read selectively by the script, so only the location it names (or one inside a written location) links.
WHOLE_PREFIX_SOURCES = frozenset({ParentSource.INPUT_CHANNEL, ParentSource.CHECKPOINT})


class ArtifactRole(StrEnum):
    """What a producing job wrote at an indexed location."""

    MODEL_ARTIFACTS = "model_artifacts"  # ModelArtifacts.S3ModelArtifacts
    OUTPUT = "output"  # OutputDataConfig.S3OutputPath/<job name>
    CHECKPOINT = "checkpoint"  # CheckpointConfig.S3Uri
    MODEL_PACKAGE = "model_package"  # OutputModelPackageArn


class ParentStatus(StrEnum):
    RESOLVED = "resolved"  # its record was read: its cumulative FLOPs are counted
    CEILING = "ceiling"  # no record: its hardware ceiling counts for its own compute, its ancestors are unknown
    UNRESOLVED = "unresolved"  # nothing could be read: counted by the incomplete-lineage rule, never as zero
    OVERRIDDEN = "overridden"  # inferred, but the job declares that it starts from no earlier job (``none``)


class LineageStatus(StrEnum):
    NONE = "none"  # no parent
    COMPLETE = "complete"  # every parent's record (and its whole lineage) was read
    DECLARED = "declared"  # something was missing; the job's declared parent FLOPs stand in
    INCOMPLETE = "incomplete"  # something was missing and nothing was declared: at least ``approaching``


@dataclass(frozen=True)
class ParentFigure:
    """One parent as the rule sees it: its cumulative FLOPs when known, and whether its compute is complete."""

    job: str
    cumulative_flops: float | None  # None: unresolved
    complete: bool = True  # False: a ceiling stood in, or its own lineage is incomplete


@dataclass(frozen=True)
class LineageFigure:
    cumulative_flops: float  # what the job is classified on (own + parents)
    parent_flops: float  # the parents' part of it
    status: LineageStatus


def normalise_s3_uri(value: str) -> str | None:
    """``s3://bucket/key`` with the scheme and bucket lower-cased and no leading/trailing ``/`` on the key;
    quotes around the value are dropped (SageMaker's framework estimators JSON-encode hyper-parameters).

    None for anything that is not an S3 URI. A location and its trailing-slash form are the same prefix.
    """
    text = value.strip().strip("\"'").strip()
    if len(text) > MAX_URI_LENGTH:
        return None
    match = _S3_URI.match(text)
    if not match:
        return None
    bucket, key = match.group(1).lower(), (match.group(2) or "").strip("/")
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


def prefix_candidates(uri: str, depth: int = MAX_PREFIX_DEPTH) -> list[str]:
    """The normalised location and its ancestors, longest first, at most ``depth`` of them (bucket included)."""
    location = normalise_s3_uri(uri)
    if location is None:
        return []
    bucket, _, key = location.removeprefix("s3://").partition("/")
    parts = key.split("/") if key else []
    found = [f"s3://{bucket}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    return [*found, f"s3://{bucket}"][:depth]


def declared_parent_names(text: str) -> list[str]:
    """The parents a declaration names (comma- or whitespace-separated), each once, in order."""
    return list(dict.fromkeys(part for part in re.split(r"[,\s]+", text.strip()) if part))


def declared_location(account_id: str, region: str, job_name: str) -> str:
    """What a declared parent is indexed under as a read (so the parent, recorded late, finds its child)."""
    return f"job:{account_id}:{region}:{job_name.lower()}"


def s3_uris_in(text: str) -> list[str]:
    """Normalised S3 URIs found in a hyper-parameter or environment value (a bare URI, a quoted one, a list)."""
    found = (normalise_s3_uri(m.group(0)) for m in _S3_IN_TEXT.finditer(text[: MAX_URI_LENGTH * MAX_LOCATIONS]))
    return list(dict.fromkeys(u for u in found if u is not None))


def lineage_flops(
    own_flops: float,
    parents: Sequence[ParentFigure],
    declared_parent_flops: float | None = None,
    *,
    unread_inputs: bool = False,
    ancestry_flops: float | None = None,
) -> LineageFigure:
    """The job's cumulative FLOPs and its lineage status (the incomplete-lineage rule in the module docstring).

    ``ancestry_flops``: the parents' compute with each ancestor counted once (``lineage_graph.merge_ancestry``);
    without it the parents' cumulative figures are summed (a shared ancestor twice: over, never under). A
    declaration is used only when something is missing, and never below what could be read. ``unread_inputs``: some
    of what the job reads was not looked up, so a parent may be missing even when none was found.
    """
    summed = sum(p.cumulative_flops for p in parents if p.cumulative_flops is not None)
    known = summed if ancestry_flops is None else ancestry_flops
    missing = unread_inputs or any(p.cumulative_flops is None or not p.complete for p in parents)
    if not parents and not missing:
        return LineageFigure(own_flops, 0.0, LineageStatus.NONE)
    if not missing:
        return LineageFigure(own_flops + known, known, LineageStatus.COMPLETE)
    if declared_parent_flops is not None:
        stand_in = max(declared_parent_flops, known)
        return LineageFigure(own_flops + stand_in, stand_in, LineageStatus.DECLARED)
    return LineageFigure(own_flops + known, known, LineageStatus.INCOMPLETE)


def incomplete_lineage_basis(reasons: Iterable[str]) -> str:
    shown = "; ".join(reasons) or "a parent could not be read"
    return (
        f"lineage incomplete ({shown}): the missing compute is never counted as zero, so the outcome is at least "
        "'approaching'; declare the parents' cumulative FLOPs (flopsmeter:parent-flops) to classify on them"
    )


def apply_lineage_rule(
    classification: Classification, status: LineageStatus, reasons: Iterable[str] = ()
) -> Classification:
    """Raise every ``below`` outcome to ``approaching`` when the lineage is incomplete; anything else unchanged."""
    if status is not LineageStatus.INCOMPLETE:
        return classification
    reasons = list(reasons)
    results = tuple(lineage_floor(r, status, reasons) for r in classification.results)
    return replace(
        classification, results=results, warnings=(*classification.warnings, incomplete_lineage_basis(reasons))
    )


def lineage_floor(
    result: PolicyResult, status: LineageStatus | str | None, reasons: Iterable[str] = ()
) -> PolicyResult:
    """One policy's result under the rule: ``below`` becomes ``approaching`` when the lineage is incomplete (also
    for re-evaluating a stored record, whose status is text or None before issue 18)."""
    if status != LineageStatus.INCOMPLETE or result.outcome is not Outcome.BELOW:
        return result
    return replace(result, outcome=Outcome.APPROACHING, basis=f"{result.basis}; {incomplete_lineage_basis(reasons)}")
