"""Query at scale: a Glue table over the records (JSON SerDe, partition projection), the table of their compacted
Parquet copies, and an Athena workgroup.

Partition projection computes partitions from the key layout
``records/v1/account=<id>/region=<r>/date=<YYYY-MM-DD>/<job>.json`` (flopsmeter.audit.keys), so there is
no crawler and no ``MSCK REPAIR``: a record is queryable the moment it is written. The compacted table
(``records_compacted``: the same columns plus ``_key``, Parquet under ``compacted/v1/``) has no projection: the
compaction function (``infra/constructs/compaction.py``) registers each partition and points it at its newest
generation. ``account`` and
``region`` are this stack's own (the classifier records jobs of its own account and region), plus, in
organization mode, the configured ``member_accounts`` and ``member_regions`` (docs/organization.md).
"""

from __future__ import annotations

from aws_cdk import (
    Aws,
    CfnCondition,
    CfnResource,
    Duration,
    Fn,
    ICfnConditionExpression,
    RemovalPolicy,
    Stack,
    Token,
)
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from flopsmeter.audit.keys import COMPACTED_PREFIX, RECORDS_PREFIX
from infra.config import DeployConfig
from infra.constructs.nag import acknowledge, skip_checkov
from infra.glue_schema import record_columns

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARTITION_KEYS = ("account", "region", "date")
FIRST_RECORD_DATE = "2024-01-01"
RESULTS_EXPIRE_DAYS = 30


class RecordsQuery(Construct):
    """Exposes ``database_name``, ``table_name``, ``compacted_table_name``, ``workgroup_name`` and
    ``results_bucket``; ``grant_readers`` lets people query, ``grant_compaction`` lets the compaction function run
    its queries and maintain the compacted table's partitions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        records_bucket: s3.IBucket,
        key: kms.IKey,
        log_bucket: s3.IBucket,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stage = config.stage
        # Humans type the database and table in queries, so they have fixed, stage-qualified names (deleted with
        # the stack, so a re-deploy can take them again). The workgroup is retained in production and Athena
        # requires a name: it carries this stack's id, so a stack re-created after a destroy does not collide
        # with the retained one (the CLI reads it from the AthenaWorkGroup output).
        self.database_name = f"flopsmeter_{stage}".replace("-", "_")
        self.table_name = "records"
        self.compacted_table_name = "records_compacted"
        stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
        self.workgroup_name = Fn.join("-", ["flopsmeter", stage, Fn.select(0, Fn.split("-", stack_uuid))])

        database = self._database()
        self._records_table(database, records_bucket, config)
        self._compacted_table(database, records_bucket)
        self.results_bucket = self._results_bucket(key, log_bucket, removal_policy)
        self.workgroup = self._workgroup(key, config.athena_bytes_scanned_cutoff_gb, removal_policy)

    def _database(self) -> glue.CfnDatabase:
        return glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="FLOPs Meter audit records (EU AI Act compute compliance)",
            ),
        )

    def _records_table(self, database: glue.CfnDatabase, bucket: s3.IBucket, config: DeployConfig) -> glue.CfnTable:
        """The records as written (JSON), partitions projected from the key layout."""
        location = f"s3://{bucket.bucket_name}/{RECORDS_PREFIX}"
        return self._table(
            "RecordsTable",
            database,
            name=self.table_name,
            description="One row per terminal SageMaker training job (schema: flopsmeter.audit.record.AuditRecord)",
            parameters={
                "classification": "json",
                "EXTERNAL": "TRUE",
                "projection.enabled": "true",
                "projection.account.type": "enum",
                "projection.account.values": _enum(self, "Account", Aws.ACCOUNT_ID, config.member_accounts),
                "projection.region.type": "enum",
                "projection.region.values": _enum(self, "Region", Aws.REGION, config.member_regions),
                "projection.date.type": "date",
                "projection.date.format": "yyyy-MM-dd",
                "projection.date.range": f"{FIRST_RECORD_DATE},NOW",
                "projection.date.interval": "1",
                "projection.date.interval.unit": "DAYS",
                "storage.location.template": location + "account=${account}/region=${region}/date=${date}/",
            },
            storage=glue.CfnTable.StorageDescriptorProperty(
                location=location,
                input_format="org.apache.hadoop.mapred.TextInputFormat",
                output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                serde_info=glue.CfnTable.SerdeInfoProperty(
                    serialization_library=JSON_SERDE,
                    # A malformed object must fail the query loudly, not vanish from the results.
                    parameters={"ignore.malformed.json": "FALSE", "case.insensitive": "TRUE"},
                ),
                columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in record_columns()],
            ),
        )

    def _compacted_table(self, database: glue.CfnDatabase, bucket: s3.IBucket) -> glue.CfnTable:
        """The records' Parquet copies (``_key`` + the record columns); the compaction function adds partitions."""
        return self._table(
            "CompactedTable",
            database,
            name=self.compacted_table_name,
            description="The records' Parquet copies, one generation per date partition (flopsmeter compaction)",
            parameters={"classification": "parquet", "EXTERNAL": "TRUE"},
            storage=glue.CfnTable.StorageDescriptorProperty(
                location=f"s3://{bucket.bucket_name}/{COMPACTED_PREFIX}",
                input_format=PARQUET_INPUT,
                output_format=PARQUET_OUTPUT,
                serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE),
                columns=[
                    glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in (("_key", "string"), *record_columns())
                ],
            ),
        )

    def _results_bucket(self, key: kms.IKey, log_bucket: s3.IBucket, removal_policy: RemovalPolicy) -> s3.Bucket:
        """Athena's query results (and compaction's staging), encrypted with the audit key, expiring."""
        bucket = s3.Bucket(
            self,
            "Results",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix="athena-results/",
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(RESULTS_EXPIRE_DAYS),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
            # A disposable stage empties its results bucket on delete, so the stack deletion does not stop on it.
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        )
        if removal_policy == RemovalPolicy.DESTROY:
            _annotate_auto_delete_provider(Stack.of(self))
        return bucket

    def _workgroup(self, key: kms.IKey, cutoff_gb: int, removal_policy: RemovalPolicy) -> athena.CfnWorkGroup:
        workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self.workgroup_name,
            description="FLOPs Meter audit queries (results encrypted with the audit key)",
            recursive_delete_option=removal_policy == RemovalPolicy.DESTROY,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=cutoff_gb * 1024**3,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results_bucket.bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS",
                        kms_key=key.key_arn,
                    ),
                ),
            ),
        )
        workgroup.apply_removal_policy(removal_policy)
        return workgroup

    def _table(
        self,
        construct_id: str,
        database: glue.CfnDatabase,
        *,
        name: str,
        description: str,
        parameters: dict[str, str],
        storage: glue.CfnTable.StorageDescriptorProperty,
    ) -> glue.CfnTable:
        """An external table of this database, partitioned by ``PARTITION_KEYS`` (strings)."""
        table = glue.CfnTable(
            self,
            construct_id,
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters=parameters,
                partition_keys=[glue.CfnTable.ColumnProperty(name=k, type="string") for k in PARTITION_KEYS],
                storage_descriptor=storage,
            ),
        )
        table.node.add_dependency(database)
        return table

    def _catalog_arn(self, kind: str = "", name: str = "") -> str:
        prefix = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        return f"{prefix}:{kind}/{name}" if kind else f"{prefix}:catalog"

    def _query_statements(self, grantee: iam.ManagedPolicy | iam.IRole) -> list[iam.PolicyStatement]:
        """Run queries in this workgroup, and read and write their results (``grantee``: where to acknowledge)."""
        workgroup_arn = f"arn:{Aws.PARTITION}:athena:{Aws.REGION}:{Aws.ACCOUNT_ID}:workgroup/{self.workgroup_name}"
        results = Stack.of(self).get_logical_id(self.results_bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            grantee,
            f"AwsSolutions-IAM5[Resource::<{results}.Arn>/*]",
            "Athena writes each query's results (and UNLOAD its files) under generated keys in the results bucket.",
        )
        return [
            iam.PolicyStatement(
                sid="Query",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                    "athena:GetWorkGroup",
                ],
                resources=[workgroup_arn],
            ),
            # Athena's documented results-bucket actions (UNLOAD and large results upload in parts).
            iam.PolicyStatement(
                sid="QueryResults",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=[self.results_bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                sid="ListQueryResults",
                actions=["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
                resources=[self.results_bucket.bucket_arn],
            ),
        ]

    def grant_readers(self, policy: iam.ManagedPolicy) -> None:
        """Run queries in this workgroup over both tables, and read and write their results."""
        policy.add_statements(
            *self._query_statements(policy),
            iam.PolicyStatement(
                sid="Catalog",
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                resources=[
                    self._catalog_arn(),
                    self._catalog_arn("database", self.database_name),
                    self._catalog_arn("table", f"{self.database_name}/{self.table_name}"),
                    self._catalog_arn("table", f"{self.database_name}/{self.compacted_table_name}"),
                ],
            ),
        )

    def grant_compaction(self, role: iam.IRole) -> None:
        """The compaction function: query the records table (and UNLOAD into the results bucket), and register
        and move the compacted table's partitions (``ALTER TABLE ... ADD PARTITION`` / ``SET LOCATION``), reading
        where they point first (``BatchGetPartition``)."""
        for statement in self._query_statements(role):
            role.add_to_principal_policy(statement)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadCatalog",
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                resources=[
                    self._catalog_arn(),
                    self._catalog_arn("database", self.database_name),
                    self._catalog_arn("table", f"{self.database_name}/{self.table_name}"),
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CompactedPartitions",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                    "glue:CreatePartition",
                    "glue:BatchCreatePartition",
                    "glue:UpdatePartition",
                ],
                resources=[
                    self._catalog_arn(),
                    self._catalog_arn("database", self.database_name),
                    self._catalog_arn("table", f"{self.database_name}/{self.compacted_table_name}"),
                ],
            )
        )


def _annotate_auto_delete_provider(stack: Stack) -> None:
    """The scanners' reasons on CDK's bucket-emptying function (disposable stages only)."""
    provider = stack.node.find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
    handler = provider.node.find_child("Handler")
    assert isinstance(handler, CfnResource)
    # CDK makes the handler depend on its role both by reference and by DependsOn; cfn-lint flags the repeat.
    handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    reason = "CDK's own custom-resource handler that empties a disposable stage's results bucket on stack delete"
    for check_id, why in (
        ("CKV_AWS_115", "runs once per deletion"),
        ("CKV_AWS_116", "CloudFormation retries and reports a failure"),
        ("CKV_AWS_117", "calls only the S3 API"),
    ):
        skip_checkov(handler, check_id, f"{reason}: {why}.")


def _enum(scope: Construct, name: str, own: str, more: tuple[str, ...]) -> str:
    """A projection's enum values: this stack's own, and in organization mode the configured members' (``own``
    only once: a value listed twice would make Athena read its partition twice)."""
    if not more:
        return own
    listed = CfnCondition(scope, f"{name}Listed", expression=_any([Fn.condition_equals(own, m) for m in more]))
    members = ",".join(more)
    return Token.as_string(Fn.condition_if(listed.logical_id, members, Fn.join(",", [own, members])))


def _any(conditions: list[ICfnConditionExpression]) -> ICfnConditionExpression:
    """``Fn::Or`` of any number of conditions (CloudFormation takes 2 to 10 per ``Fn::Or``)."""
    if len(conditions) == 1:
        return conditions[0]
    if len(conditions) <= 10:
        return Fn.condition_or(*conditions)
    return _any([_any(conditions[i : i + 10]) for i in range(0, len(conditions), 10)])
