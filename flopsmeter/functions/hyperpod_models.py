"""The HyperPod report a job's meter sends (the body of a message on the reports queue), as a pydantic edge model.

Everything in it is a claim: who sent it is SQS's ``SenderId``, read by the function, never a field here. Only what
the service needs is required; a field it does not know is kept out (``extra="ignore"``) so a newer meter's report is
never "malformed".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from flopsmeter.errors import MalformedEvent
from flopsmeter.ports import MeteredFigures
from flopsmeter.service.hyperpod import HyperPodReport

MAX_REASON = 1000
ClusterRef = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9:/._-]+$")]
JobId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")]
Figure = Annotated[float, Field(allow_inf_nan=True)]  # the service judges NaN, inf and negatives (records say why)


class HyperPodReportBody(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["FlopsMeter HyperPod Job Report"]  # contract.HYPERPOD_REPORT_KIND (a test pins the two)
    version: Literal[1] = 1
    cluster: ClusterRef
    orchestrator: Literal["slurm", "eks"]
    job_id: JobId
    caller_arn: str = Field(min_length=20, max_length=2048)  # sts GetCallerIdentity's Arn, in the job
    status: Literal["Completed", "Failed", "Stopped"]
    start_time: datetime
    end_time: datetime
    instance_type: str = Field(min_length=1, max_length=64)
    node_count: int = Field(ge=1, le=100_000)
    cumulative_flops: Figure | None = None
    tokens: Figure | None = None
    non_padding_tokens: Figure | None = None
    recompute_flops: Figure | None = None
    meter_incomplete: Figure | None = None
    settings: dict[str, Annotated[str, StringConstraints(max_length=1024)]] = Field(default_factory=dict)
    submitted_by: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _times(self) -> HyperPodReportBody:
        if self.start_time.tzinfo is None or self.end_time.tzinfo is None:
            raise ValueError("start_time and end_time need a time zone (ISO 8601 with Z or an offset)")
        if self.end_time < self.start_time:
            raise ValueError("end_time is before start_time")
        return self

    def to_report(self) -> HyperPodReport:
        return HyperPodReport(
            cluster=self.cluster,
            orchestrator=self.orchestrator,
            job_id=self.job_id,
            caller_arn=self.caller_arn,
            status=self.status,
            start=self.start_time,
            end=self.end_time,
            instance_type=self.instance_type,
            node_count=self.node_count,
            figures=MeteredFigures(
                cumulative_flops=self.cumulative_flops,
                tokens=self.tokens,
                non_padding_tokens=self.non_padding_tokens,
                recompute_flops=self.recompute_flops,
                datapoints=1 if self.cumulative_flops is not None else 0,
                meter_incomplete=self.meter_incomplete,
            ),
            settings=dict(self.settings),
            submitted_by=self.submitted_by,
        )


def parse_report(body: str) -> HyperPodReport:
    """The report in ``body`` (JSON text), or ``MalformedEvent`` with a short reason (no input echoed)."""
    try:
        return HyperPodReportBody.model_validate_json(body).to_report()
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in err.errors(include_url=False, include_input=False)[:10]
        )
        raise MalformedEvent(f"not a HyperPod job report: {problems}"[:MAX_REASON]) from None
