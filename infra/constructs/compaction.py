"""Compaction in AWS: a scheduled function copies settled days of records into Parquet for Athena to scan.

- Every six hours (20 minutes past) the compaction function (``flopsmeter.functions.compaction``) runs
  ``compact_with_athena``: Athena ``UNLOAD``s each settled date partition that changed into a staging prefix of
  the results bucket; the function copies the files into the audit bucket under ``compacted/`` with
  ``If-None-Match`` and Object Lock (like every audit object: the bucket policy is not loosened for Athena, which
  can send neither), writes the manifest once, and points the ``records_compacted`` partition at it.
- Its role: read ``records/`` (Athena reads the records with the caller's credentials, and asks the bucket's
  location) and ``compacted/`` (the newest manifest), write ``compacted/`` once (the only writer there, and a
  retention writer nowhere else), run queries in the workgroup and write the results bucket (multipart uploads
  included), and register or move the compacted table's partitions.
- Fifteen minutes per run; it starts no partition with less than two minutes left, and the next run continues.
"""

from __future__ import annotations

from dataclasses import replace

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from flopsmeter.audit.keys import COMPACTED_PREFIX
from infra.constructs.audit_bucket import RECORDS_ROOT, AuditBucket
from infra.constructs.functions import FunctionOptions, ServiceFunction
from infra.constructs.nag import acknowledge, skip_checkov
from infra.constructs.query import RecordsQuery

COMPACTED_ROOT = COMPACTED_PREFIX.split("/", 1)[0] + "/"  # "compacted/"
SETTLE_DAYS = 2  # a day is compacted two days after it ends (late records are rare by then)
LOOKBACK_DAYS = 7  # each run re-examines a week of settled days (a late record makes a new generation)
SCHEDULE = events.Schedule.cron(minute="20", hour="0/6")


class RecordsCompaction(Construct):
    """Exposes ``function`` (a ``ServiceFunction``) and ``retention_writer`` (its role and prefix, for the bucket
    policy's fence)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, base: FunctionOptions, audit: AuditBucket, query: RecordsQuery
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = ServiceFunction(
            self,
            "Compactor",
            replace(
                base,
                handler="lambdas.compaction.handler.lambda_handler",
                description="Copies settled days of audit records into Parquet (Athena), write-once, with manifests",
                timeout=Duration.minutes(15),
                memory_mb=1024,  # one partition's Parquet files pass through memory on their way into the bucket
                environment={
                    **base.environment,
                    "ATHENA_WORKGROUP": query.workgroup_name,
                    "GLUE_DATABASE": query.database_name,
                    "RECORDS_TABLE": query.table_name,
                    "COMPACTED_TABLE": query.compacted_table_name,
                    "STAGING_BUCKET_NAME": query.results_bucket.bucket_name,
                    "COMPACTION_SETTLE_DAYS": str(SETTLE_DAYS),
                    "COMPACTION_LOOKBACK_DAYS": str(LOOKBACK_DAYS),
                },
            ),
        )
        role = self.function.role
        audit.grant_read(role, "ReadRecordsAndCompacted", RECORDS_ROOT, COMPACTED_ROOT)
        audit.grant_write_once(role, "WriteCompactedOnce", COMPACTED_ROOT)
        audit.grant_query_source(role)
        query.grant_compaction(role)
        self.retention_writer = (role, (COMPACTED_ROOT,))
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "X-Ray trace writes have no resource-level scope.")
        skip_checkov(
            self.function.function,
            "CKV_AWS_116",
            "Scheduled, idempotent run: a failed run raises the Errors alarm and the next run redoes its work; a DLQ "
            "would hold nothing to redrive.",
        )
        self.function.run_on_schedule(SCHEDULE, "FLOPs Meter compaction: settled days of records into Parquet")
