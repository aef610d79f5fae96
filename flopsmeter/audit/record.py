"""Audit record schema v1: one JSON object per terminal training job (DESIGN.md, "Audit record").

FLOP counts are JSON numbers (floats; Athena ``double``): they overflow ``bigint``. ``sha256`` is the
SHA-256 of the canonical JSON of every other field (sorted keys, no whitespace, UTF-8), so anyone can
recompute it from the stored object alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from flopsmeter.audit.energy_obligations import EnergyInfo, ObligationsInfo
from flopsmeter.domain.classification import PolicyResult
from flopsmeter.domain.hardware import HardwareCeiling

SCHEMA_VERSION = 1
KNOWN_SCHEMA_VERSIONS = frozenset({1})
RECORD_NAMESPACE = uuid.UUID("6f1c1a52-3d1e-4bb0-9a55-2f4b3c8e9d10")  # uuid5 namespace of record ids


def _finite_non_negative(value: float) -> float:
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError("must be a finite number >= 0")
    return value


FlopCount = Annotated[float, AfterValidator(_finite_non_negative)]
Outcome = Literal["below", "approaching", "exceeds"]
# estimated: managed customization; reported: a HyperPod job's own meter, reported under the job's IAM identity
FlopsMethod = Literal["metered", "hardware_ceiling", "declared", "estimated", "reported"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobInfo(_Model):
    name: str = Field(min_length=1, max_length=63)
    arn: str
    account_id: str
    region: str
    status: Literal["Completed", "Failed", "Stopped", "Expired", "Deleted"]  # Expired, Deleted: training sessions
    failure_reason: str | None = None
    creation_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime
    instance_type: str
    instance_count: int = Field(ge=1)
    billable_seconds: int | None = Field(default=None, ge=0)
    training_seconds: float = Field(ge=0)
    training_seconds_source: str = "TrainingStartTime..TrainingEndTime"


class BaseModelInfo(_Model):
    model_id: str | None = None
    pretrain_flops: FlopCount | None = None
    source: Literal["environment", "tag", "catalog", "argument", "unknown"]
    basis: str
    systemic_risk: bool = False
    raw_value: str | None = None
    # how model_id matched the catalog
    catalog_match: Literal["exact", "alias", "normalised", "family_size"] | None = None


class HardwareCeilingInfo(_Model):
    flops: FlopCount
    bf16_flops: FlopCount
    accelerator: str
    chips_per_instance: int
    instance_count: int
    seconds: float
    peak_flops_per_chip: float
    precision: str
    known_instance: bool
    peak_source: str

    @classmethod
    def from_ceiling(cls, ceiling: HardwareCeiling) -> HardwareCeilingInfo:
        """The record's shape of a domain ``HardwareCeiling`` (same field names)."""
        return cls(**{name: getattr(ceiling, name) for name in cls.model_fields})


class FlopsInfo(_Model):
    method: FlopsMethod  # which figure the classification used
    classified_flops: FlopCount  # the job's own FLOPs used for classification (before lineage)
    metered: FlopCount | None = None
    hardware_ceiling: HardwareCeilingInfo
    declared: FlopCount | None = None
    tokens: int | None = Field(default=None, ge=0)
    non_padding_tokens: int | None = Field(default=None, ge=0)
    recompute_flops: FlopCount | None = None  # gradient checkpointing; recorded, not added
    formula_version: str | None = None
    uncertainty: str
    # Where ``metered`` came from: the meter's CloudWatch series, or (when that series is missing) the last values of
    # its stdout metrics that SageMaker keeps in DescribeTrainingJob's FinalMetricDataList. None: nothing metered.
    # hyperpod_report: a HyperPod job's report on the service's reports queue (issue 26; ``hyperpod`` block).
    metered_channel: Literal["cloudwatch", "final_metric_data", "hyperpod_report"] | None = None


class PolicyClassification(_Model):
    policy: str
    scenario: Literal["default", "relative", "systemic"]
    threshold: FlopCount
    ratio: float
    outcome: Outcome
    basis: str

    @classmethod
    def from_result(cls, result: PolicyResult) -> PolicyClassification:
        """The record's shape of one domain ``PolicyResult``."""
        return cls.model_validate(result.as_dict())


class LaunchLink(_Model):
    """One step of a launch chain: what was created, and the CloudTrail call that created it (when known)."""

    kind: Literal[
        "training-job", "hyper-parameter-tuning-job", "pipeline-execution", "automl-job", "training-session",
        "batch-service-job",
    ]  # fmt: skip
    arn: str
    event_name: str | None = None
    event_id: str | None = None
    principal_arn: str | None = None


class CloudTrailRef(_Model):
    status: Literal["found", "not_found"]
    event_id: str | None = None
    event_time: datetime | None = None
    principal_arn: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    reason: str | None = None
    # Provenance (scale): where the "who" came from (the provenance object captured at launch, or a LookupEvents
    # scan), and for a job launched by a service the chain job -> parent (tuning job, pipeline execution, AutoML
    # job); the person is the parent's creator (``principal_arn`` above). Empty chain: the job was launched directly.
    source: Literal["provenance", "lookup_events"] | None = None
    chain: list[LaunchLink] = Field(default_factory=list)


class ParentLink(_Model):
    """One parent of a job (lineage inference, issue 18): who, how it was found, what was counted."""

    job: str | None = None  # None: a declaration that is not a job name
    job_arn: str | None = None
    source: Literal["declared", "input_channel", "checkpoint", "hyperparameter", "environment", "model_package"]
    location: str | None = None  # the input location or model package that matched, or the declared value
    record_key: str | None = None
    cumulative_flops: FlopCount | None = None  # None: unresolved (never counted as zero; see ``Lineage.status``)
    status: Literal["resolved", "ceiling", "unresolved", "overridden"]
    reason: str | None = None


class AncestorLink(_Model):
    """One ancestor of a job, counted once (issue 23, ``flopsmeter.domain.lineage_graph``): the compute this node
    alone adds to the job's cumulative figure."""

    id: str  # the job's ARN (else its name); a stand-in: "declared:<job>" or "not_itemised:<job>"
    job: str | None = None
    record_key: str | None = None
    flops: FlopCount
    basis: Literal["record", "ceiling", "declared", "not_itemised"]


class Lineage(_Model):
    parent_job: str | None = None
    parent_record_key: str | None = None
    own_flops: FlopCount
    parent_cumulative_flops: FlopCount = 0.0
    cumulative_flops: FlopCount
    chain: list[str] = Field(default_factory=list)  # ancestors, oldest first
    # --- lineage inference and incomplete lineage (issue 18): additive, optional; None/empty before it ---
    status: Literal["none", "complete", "declared", "incomplete"] | None = None
    parents: list[ParentLink] = Field(default_factory=list)
    incomplete_reasons: list[str] = Field(default_factory=list)
    declared_parent_flops: FlopCount | None = None  # FLOPSMETER_PARENT_FLOPS / flopsmeter:parent-flops
    model_package_group_arn: str | None = None  # ModelPackageConfig.ModelPackageGroupArn (splitting presets)
    output_model_package_arn: str | None = None  # the model package the job produced
    # --- lineage as a graph (issue 23): every ancestor once; cumulative_flops = own_flops + sum of their flops.
    # None: a record written before it (its ancestors are not itemised; readers count them as one figure). ---
    ancestors: list[AncestorLink] | None = None


# ---- managed customization jobs and recipes (issue 17; issue 16 item 4: Bedrock) ------------------------------
# SageMaker AI serverless customization and Amazon Bedrock jobs are classified with the ``estimated`` method
# (flopsmeter.domain.customization); recipe jobs stay metered or ceiling-bounded, the recipe facts are context.


class EstimateInfo(_Model):
    """``flopsmeter.domain.estimate.Estimate.as_dict()``: the figure classified on is ``flops`` (the upper end)."""

    method: Literal["estimated"]
    flops: FlopCount
    central: FlopCount
    low: FlopCount
    uncertainty: float = Field(ge=0, lt=1)
    breakdown: dict[str, FlopCount]
    technique: str
    tokens: int = Field(ge=0)
    tokens_basis: str
    tokens_known: bool
    cost_basis: str
    cost_known: bool
    assumptions: list[str]
    needs_declaration: bool


class CustomizationInfo(_Model):
    """A managed customization job: what it was read from, and its estimate (``CustomizationEstimate.as_dict()``)."""

    service: Literal["sagemaker-serverless", "bedrock", "sagemaker-training-session"]
    kind: Literal["fine_tuning", "evaluation"]  # an evaluation's compute is kept, not counted (guideline para. 118)
    base_model_reference: str
    base_model_name: str
    base_model_version: str | None = None
    catalog_match: Literal["exact", "alias", "normalised", "family_size"] | None = None
    adapters: bool
    seq_len: int | None = Field(default=None, ge=1)
    modification_flops: FlopCount  # what counts towards the modification (0 for an evaluation)
    estimate: EstimateInfo


class RecipeInfo(_Model):
    """A HyperPod recipe run as a training job (``flopsmeter.domain.recipes.RecipeInfo.as_dict()``)."""

    recipe: str | None = None
    model: str | None = None
    catalog_model_id: str | None = None
    seq_len: int | None = Field(default=None, ge=1)
    found_in: list[str] = Field(default_factory=list)


class AddendumInfo(_Model):
    """An addendum re-assesses a recorded job (issue 23): a parent recorded after the job that read its artifacts
    (the parent's event was late) is counted now. Records are write-once, so the addendum is a new record at its own
    key (``flopsmeter.audit.keys.addendum_key``) that names the original; the original stays as written."""

    of_record_key: str  # the original record
    of_record_sha256: str
    builds_on: list[str] = Field(default_factory=list)  # earlier addenda of the same job whose ancestors it includes
    reason: str
    late_parents: list[str] = Field(default_factory=list)  # the jobs recorded late that this addendum counts
    late_parent_record_keys: list[str] = Field(default_factory=list)


# ---- issue 26: SageMaker training sessions and AWS Batch service jobs -------------------------------------------


class SessionInfo(_Model):
    """A SageMaker training session (DescribeTrainingSession): what its estimate was read from, and how it was
    watched while it ran."""

    status: str  # DescribeTrainingSession's own status (Stopped, Failed, Expired, Deleting, DeletionFailed)
    base_model_arn: str | None = None
    lora_rank: int | None = None
    lora_alpha: int | None = None
    training_tokens: int | None = Field(default=None, ge=0)
    prefill_tokens: int | None = Field(default=None, ge=0)
    sample_tokens: int | None = Field(default=None, ge=0)
    model_package_group_arn: str | None = None
    checkpoints: list[str] = Field(default_factory=list)  # model packages published to the group while it ran
    running_assessments: int = Field(default=0, ge=0)  # scheduled passes that re-assessed it while it ran
    crossed_while_running_at: datetime | None = None  # the first pass's crossing moment (Art. 52(1) clock)


class BatchAttempt(_Model):
    """One attempt of an AWS Batch service job: its SageMaker training job and the FLOPs counted for it."""

    training_job_arn: str
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    status_reason: str | None = None
    preempted: bool = False
    flops: FlopCount
    method: str  # the attempt record's method, or "hardware_ceiling" when read here
    source: Literal["record", "describe_training_job", "submitted_request"]
    record_key: str | None = None


class BatchInfo(_Model):
    """An AWS Batch service job: every attempt summed into one modification (``role``: this record is the
    service job's own, or one attempt's, naming the service job and its siblings)."""

    role: Literal["service_job", "attempt"]
    service_job_arn: str
    service_job_id: str
    service_job_name: str
    job_queue: str | None = None
    status: str | None = None
    attempts: list[BatchAttempt] = Field(default_factory=list)
    siblings: list[str] = Field(default_factory=list)  # the other attempts' training-job ARNs
    preempted_attempts: int = Field(default=0, ge=0)
    summed_flops: FlopCount | None = None


class HyperPodInfo(_Model):
    """A SageMaker HyperPod job reported by its own meter (issue 26 point 3; ``flopsmeter.service.hyperpod``): who
    sent it (SQS SenderId, checked against IAM) and how the sender was tied to the cluster. Other fields are the
    report's claims."""

    cluster_name: str
    cluster_arn: str
    orchestrator: Literal["slurm", "eks"]
    job_id: str
    sender_id: str  # SQS SenderId: <role unique id>:<session name>, set by SQS from the signed request
    role_arn: str  # the role whose unique id is the SenderId's (IAM GetRole)
    session: str
    link: Literal["node", "execution_role", "role_tag"]
    submitted_by: str | None = None  # the orchestrator's user (Slurm SLURM_JOB_USER, Kubernetes namespace): a claim
    message_id: str | None = None


class AuditRecord(_Model):
    schema_version: Literal[1] = 1
    record_id: str
    recorded_at: datetime
    job: JobInfo
    base_model: BaseModelInfo
    flops: FlopsInfo
    classifications: list[PolicyClassification] = Field(min_length=1)
    primary_policy: str
    outcome: Outcome  # the primary policy's outcome, for queries
    cloudtrail: CloudTrailRef
    eventbridge_event_id: str | None = None
    lineage: Lineage
    warnings: list[str] = Field(default_factory=list)
    # --- issue 16 (energy and obligations): optional blocks, absent from records written before them -----------
    energy: EnergyInfo | None = None
    obligations: ObligationsInfo | None = None
    # --- issue 17 / issue 16 item 4 (managed customization jobs, recipes): optional blocks, absent on other jobs ---
    customization: CustomizationInfo | None = None
    recipe: RecipeInfo | None = None
    # --- issue 23: present only on an addendum (a re-assessment of a recorded job) ---
    addendum: AddendumInfo | None = None
    # --- issue 26 (training sessions, AWS Batch service jobs): optional blocks, absent on other jobs ------------
    session: SessionInfo | None = None
    batch: BatchInfo | None = None
    # --- issue 26 (HyperPod jobs reported by their meter): optional, absent on other jobs ---
    hyperpod: HyperPodInfo | None = None
    sha256: str = ""

    def body(self) -> dict[str, Any]:
        """Every field but ``sha256``, as JSON-ready values (an absent optional block stays absent, so a record
        written before the block existed hashes as it did)."""
        absent = {name for name in _OPTIONAL_BLOCKS if getattr(self, name) is None}
        exclude: dict[str, Any] = dict.fromkeys(("sha256", *absent), True)
        if self.lineage.ancestors is None:  # a record before issue 23 hashes as it did
            exclude["lineage"] = {"ancestors": True}
        return self.model_dump(mode="json", exclude=exclude)

    def sealed(self) -> AuditRecord:
        """A copy with ``sha256`` set from the canonical JSON of the body."""
        return self.model_copy(update={"sha256": body_sha256(self.body())})

    def to_json_bytes(self) -> bytes:
        return canonical_json({**self.body(), "sha256": self.sha256})


_OPTIONAL_BLOCKS = ("energy", "obligations", "customization", "recipe", "addendum", "session", "batch", "hyperpod")


def canonical_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def body_sha256(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


def stored_sha256_matches(document: dict[str, Any]) -> bool:
    """Recompute a stored record's hash from the document alone (no pydantic, any schema version)."""
    claimed = document.get("sha256")
    body = {k: v for k, v in document.items() if k != "sha256"}
    return isinstance(claimed, str) and body_sha256(body) == claimed


def record_id_for(job_arn: str) -> str:
    """Deterministic: a redelivered event produces the same id (and the same key)."""
    return str(uuid.uuid5(RECORD_NAMESPACE, job_arn))
