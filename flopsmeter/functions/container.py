"""Each function's dependencies, built explicitly from its settings into one container.

Lambda builds a container once per execution environment (``flopsmeter.functions.<fn>.lambda_handler`` does it at
the first invocation, from the environment); the local runner and tests build their own with ``build_*`` and a
client factory aimed at the emulator or moto, and hand it to ``handler_for``. Nothing is cached behind a getter
that would have to be cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from flopsmeter.functions.settings import (
    ClassificationSettings,
    ClassifierSettings,
    CompactorSettings,
    DigestSettings,
    FunctionSettings,
    ReconcilerSettings,
)
from flopsmeter.ports import LogSink, MetricSink
from flopsmeter.service.dependencies import Dependencies, ServiceConfig

if TYPE_CHECKING:
    from flopsmeter.aws.dead_letters import DeadLetterQueue
    from flopsmeter.aws.sessions import AccountSessions, ClientBuilder
    from flopsmeter.aws.store import AuditStore
    from flopsmeter.compliance.compaction.athena import CompactionSettings, RunSql, Staging

ClientFactory = Callable[[str], Any]  # service name -> boto3 client


def aws_client(service: str) -> Any:
    """The production client factory (``flopsmeter.aws.clients``: retries, timeouts, ``AWS_ENDPOINT_URL``)."""
    from flopsmeter.aws.clients import client

    return client(service)


def member_client_builder() -> ClientBuilder:
    """The production builder of clients acting with a member role's credentials (``flopsmeter.aws.clients``)."""
    from flopsmeter.aws.clients import client_with_credentials

    return client_with_credentials


@dataclass(frozen=True)
class AccountScope:
    """Whose adapters read a job's facts: the function's own, or (organization mode) a member account's.

    ``deps_for(account, region)`` is ``deps`` itself in single-account mode and for the compliance account; for a
    member account the job, metric and CloudTrail readers act through its reader role (``flopsmeter.aws.sessions``,
    raising ``MemberRoleUnavailable`` when it cannot be assumed), while the store, the publisher and the sinks stay
    the compliance account's: the record is written where every record is.
    """

    deps: Dependencies
    sessions: AccountSessions | None = None  # None: single-account mode

    def deps_for(self, account: str | None, region: str | None = None) -> Dependencies:
        if self.sessions is None or self.sessions.is_home(account):
            return self.deps
        assert account is not None  # is_home(None) is True
        from flopsmeter.aws.batch import BatchServiceJobs
        from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
        from flopsmeter.aws.metrics import JobMetrics
        from flopsmeter.aws.sagemaker import SageMakerJobs
        from flopsmeter.aws.training_sessions import TrainingSessions

        clients = self.sessions.clients_for(account, region)
        return replace(
            self.deps,
            jobs=SageMakerJobs(clients("sagemaker")),
            meter=JobMetrics(clients("cloudwatch")),
            trail=CreateTrainingJobTrail(clients("cloudtrail")),
            bedrock=None,  # the member role reads SageMaker only; the member stack forwards no Bedrock events
            sessions=TrainingSessions(clients("sagemaker")),  # issue 26: read through the member's reader role
            batch=BatchServiceJobs(clients("batch")),
        )


@dataclass(frozen=True)
class ClassifierContainer:
    deps: Dependencies
    config: ServiceConfig
    dead_letters: DeadLetterQueue | None  # None: DEAD_LETTER_QUEUE_URL unset, failures go by the redrive policy
    accounts: AccountScope | None = None  # None: every job is read with ``deps`` (single-account mode)
    max_receive_count: int | None = None  # the queue's maxReceiveCount, when known (MAX_RECEIVE_COUNT)

    def deps_for(self, account: str | None, region: str | None = None) -> Dependencies:
        return self.deps if self.accounts is None else self.accounts.deps_for(account, region)


@dataclass(frozen=True)
class ReconcilerContainer:
    deps: Dependencies
    config: ServiceConfig
    lookback_hours: int
    accounts: AccountScope | None = None  # organization mode: the rotation below is used
    rotation: RotationSettings | None = None


@dataclass(frozen=True)
class RotationSettings:
    """Organization mode's reconcile plan (``flopsmeter.service.rotation``) and where it gets its accounts."""

    accounts: tuple[str, ...]  # empty: Organizations ListAccounts at each run
    regions: tuple[str | None, ...]
    jobs_per_account: int
    accounts_per_run: int
    organizations: Any  # a boto3 Organizations client (ListAccounts), used only when ``accounts`` is empty
    cursor: Any  # flopsmeter.aws.cursor.RotationCursor


@dataclass(frozen=True)
class DigestContainer:
    store: AuditStore
    kms: Any  # a boto3 KMS client; the digest function signs with it through a KmsSigner
    signing_key_id: str


@dataclass(frozen=True)
class ProvenanceContainer:
    store: AuditStore


@dataclass(frozen=True)
class CompactionContainer:
    run_sql: RunSql  # one SQL statement through Athena -> (columns, rows)
    store: AuditStore  # the audit bucket: manifests and Parquet, write-once
    staging: Staging  # where UNLOAD writes first (the Athena results bucket)
    settings: CompactionSettings


def audit_store(settings: FunctionSettings, clients: ClientFactory) -> AuditStore:
    from flopsmeter.aws.store import AuditStore

    return AuditStore(clients("s3"), settings.AUDIT_BUCKET_NAME, retention_years=settings.RETENTION_YEARS)


def classification_dependencies(
    settings: ClassificationSettings, clients: ClientFactory, *, metrics: MetricSink, log: LogSink
) -> Dependencies:
    """The classifier service's adapters over boto3 clients from ``clients``."""
    from flopsmeter.aws.batch import BatchServiceJobs
    from flopsmeter.aws.bedrock import BedrockJobs
    from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
    from flopsmeter.aws.metrics import JobMetrics
    from flopsmeter.aws.notifier import Notifier
    from flopsmeter.aws.sagemaker import SageMakerJobs
    from flopsmeter.aws.training_sessions import TrainingSessions

    return Dependencies(
        jobs=SageMakerJobs(clients("sagemaker")),
        meter=JobMetrics(clients("cloudwatch")),
        trail=CreateTrainingJobTrail(clients("cloudtrail")),
        store=audit_store(settings, clients),
        publisher=Notifier(
            clients("events"),
            clients("sns") if settings.ALERT_TOPIC_ARN else None,
            bus_name=settings.EVENT_BUS_NAME,
            topic_arn=settings.ALERT_TOPIC_ARN,
        ),
        metrics=metrics,
        log=log,
        bedrock=BedrockJobs(clients("bedrock"), clients("cloudtrail")),
        sessions=TrainingSessions(clients("sagemaker")),
        batch=BatchServiceJobs(clients("batch")),
    )


def account_scope(
    settings: ClassificationSettings, deps: Dependencies, clients: ClientFactory, member_clients: ClientBuilder | None
) -> AccountScope | None:
    """Organization mode's scope over member accounts; None in single-account mode."""
    if not settings.is_organization:
        return None
    from flopsmeter.aws.sessions import AccountSessions, partition_of

    sts = clients("sts")
    assert settings.MEMBER_ROLE_NAME is not None  # the settings model requires it in organization mode
    sessions = AccountSessions(
        sts,
        role_name=settings.MEMBER_ROLE_NAME,
        build_client=member_clients or member_client_builder(),
        partition=partition_of(sts.meta.region_name),
    )
    return AccountScope(deps, sessions)


def build_classifier(
    settings: ClassifierSettings,
    clients: ClientFactory = aws_client,
    *,
    metrics: MetricSink,
    log: LogSink,
    member_clients: ClientBuilder | None = None,
) -> ClassifierContainer:
    from flopsmeter.aws.dead_letters import DeadLetterQueue

    url = settings.DEAD_LETTER_QUEUE_URL
    deps = classification_dependencies(settings, clients, metrics=metrics, log=log)
    return ClassifierContainer(
        deps=deps,
        config=settings.service_config(),
        dead_letters=DeadLetterQueue(clients("sqs"), url) if url else None,
        accounts=account_scope(settings, deps, clients, member_clients),
        max_receive_count=settings.MAX_RECEIVE_COUNT,
    )


def build_reconciler(
    settings: ReconcilerSettings,
    clients: ClientFactory = aws_client,
    *,
    metrics: MetricSink,
    log: LogSink,
    member_clients: ClientBuilder | None = None,
) -> ReconcilerContainer:
    deps = classification_dependencies(settings, clients, metrics=metrics, log=log)
    accounts = account_scope(settings, deps, clients, member_clients)
    rotation = None
    if accounts is not None:
        from flopsmeter.aws.cursor import RotationCursor

        rotation = RotationSettings(
            accounts=settings.member_accounts,
            regions=settings.member_regions or (None,),
            jobs_per_account=settings.RECONCILE_JOBS_PER_ACCOUNT,
            accounts_per_run=settings.RECONCILE_ACCOUNTS_PER_RUN,
            organizations=None if settings.member_accounts else clients("organizations"),
            cursor=RotationCursor(
                clients("ssm") if settings.RECONCILE_CURSOR_PARAMETER else None, settings.RECONCILE_CURSOR_PARAMETER
            ),
        )
    return ReconcilerContainer(
        deps=deps,
        config=settings.service_config(),
        lookback_hours=settings.RECONCILE_LOOKBACK_HOURS,
        accounts=accounts,
        rotation=rotation,
    )


def build_digest(settings: DigestSettings, clients: ClientFactory = aws_client) -> DigestContainer:
    return DigestContainer(audit_store(settings, clients), clients("kms"), settings.DIGEST_SIGNING_KEY_ID)


def build_provenance(settings: FunctionSettings, clients: ClientFactory = aws_client) -> ProvenanceContainer:
    return ProvenanceContainer(audit_store(settings, clients))


def build_compaction(settings: CompactorSettings, clients: ClientFactory = aws_client) -> CompactionContainer:
    from flopsmeter.aws.athena import AthenaTarget, Polling
    from flopsmeter.aws.store import AuditStore
    from flopsmeter.compliance.compaction.athena import CompactionSettings, Staging, athena_runner

    target = AthenaTarget(settings.ATHENA_WORKGROUP, settings.GLUE_DATABASE)
    return CompactionContainer(
        run_sql=athena_runner(clients("athena"), target, Polling(every_seconds=1.0, timeout_seconds=600.0)),
        store=audit_store(settings, clients),
        staging=Staging(AuditStore(clients("s3"), settings.STAGING_BUCKET_NAME)),
        settings=CompactionSettings(
            records_table=settings.RECORDS_TABLE,
            compacted_table=settings.COMPACTED_TABLE,
            settle_days=settings.COMPACTION_SETTLE_DAYS,
            lookback_days=settings.COMPACTION_LOOKBACK_DAYS,
        ),
    )
