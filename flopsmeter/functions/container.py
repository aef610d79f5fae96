"""Each function's dependencies, built explicitly from its settings into one container.

Lambda builds a container once per execution environment (``flopsmeter.functions.<fn>.lambda_handler`` does it at
the first invocation, from the environment); the local runner and tests build their own with ``build_*`` and a
client factory aimed at the emulator or moto, and hand it to ``handler_for``. Nothing is cached behind a getter
that would have to be cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from flopsmeter.functions.settings import (
    ClassificationSettings,
    ClassifierSettings,
    CompactorSettings,
    DigestSettings,
    FunctionSettings,
    ReconcilerSettings,
)
from flopsmeter.ports import LogSink, MetricSink, PartitionCatalog
from flopsmeter.service.dependencies import Dependencies, ServiceConfig

if TYPE_CHECKING:
    from flopsmeter.aws.dead_letters import DeadLetterQueue
    from flopsmeter.aws.lookup_budget import LookupBudget
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
    """Whose adapters read a job's facts, and where: the function's own, or a member account's, in the job's region.

    ``deps_for(account, region)`` is ``deps`` itself for the function's own account in its own region (and in
    single-account mode). Any other account, or the own account in another member region, is read through that
    account's reader role (``flopsmeter.aws.sessions``, raising ``MemberRoleUnavailable`` when it cannot be
    assumed; the member stack creates it once per account with grants in every member region) with clients in the
    event's region, so a same-named job elsewhere is never read. The store, the publisher and the sinks stay the
    compliance account's: the record is written where every record is. A region outside the function's own and the
    member regions raises ``RegionNotServed`` (``flopsmeter.service.regions``). CloudTrail's LookupEvents budget is
    kept per account and region (its quota's scope), for the life of the execution environment.
    """

    deps: Dependencies
    sessions: AccountSessions | None = None  # None: single-account mode
    home_region: str | None = None  # None: not known (a hand-built scope): every region is read with ``deps``
    member_regions: tuple[str, ...] = ()
    budgets: dict[tuple[str, str | None], LookupBudget] = field(default_factory=dict, compare=False)

    @property
    def served(self) -> tuple[str, ...]:
        """The regions jobs are read in: the function's own, and in organization mode the member regions."""
        from flopsmeter.service.regions import served_regions

        if self.home_region is None:
            return ()
        return served_regions(self.home_region, self.member_regions if self.sessions is not None else ())

    def deps_for(self, account: str | None, region: str | None = None) -> Dependencies:
        own_account = self.sessions is None or self.sessions.is_home(account)
        own_region = self.home_region is None or region in (None, self.home_region)
        if own_account and own_region:
            return self.deps
        from flopsmeter.service.regions import check_region

        if not own_region:
            check_region(account, str(region), self.served)  # RegionNotServed: single-account mode always
        if not own_account and self.home_region is not None and self.member_regions:
            # a member account is read through its reader role, granted in the member regions only: its job in the
            # compliance region (not a member region) would end in an AccessDenied nobody follows up
            check_region(account, str(region or self.home_region), self.member_regions)
        assert self.sessions is not None  # single-account mode has returned or raised above
        return self._member_deps(account or self.sessions.home_account, region)

    def _member_deps(self, account: str, region: str | None) -> Dependencies:
        from flopsmeter.aws.batch import BatchServiceJobs
        from flopsmeter.aws.cloudtrail import CreateTrainingJobTrail
        from flopsmeter.aws.lookup_budget import LookupBudget
        from flopsmeter.aws.metrics import JobMetrics
        from flopsmeter.aws.sagemaker import SageMakerJobs
        from flopsmeter.aws.training_sessions import TrainingSessions

        assert self.sessions is not None
        clients = self.sessions.clients_for(account, region)
        budget = self.budgets.setdefault((account, region), LookupBudget())
        return replace(
            self.deps,
            jobs=SageMakerJobs(clients("sagemaker")),
            meter=JobMetrics(clients("cloudwatch")),
            trail=CreateTrainingJobTrail(clients("cloudtrail"), budget),
            bedrock=None,  # the member role reads SageMaker only; the member stack forwards no Bedrock events
            sessions=TrainingSessions(clients("sagemaker")),  # issue 26: read through the member's reader role
            batch=BatchServiceJobs(clients("batch")),
        )


@dataclass(frozen=True)
class ClassifierContainer:
    deps: Dependencies
    config: ServiceConfig
    dead_letters: DeadLetterQueue | None  # None: DEAD_LETTER_QUEUE_URL unset, failures go by the redrive policy
    accounts: AccountScope | None = None  # None (a hand-built container): every job is read with ``deps``
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
    catalog: PartitionCatalog  # where the Glue catalog points the compacted partitions


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
) -> AccountScope:
    """Which account and region each job is read in: organization mode's member accounts through their reader role;
    in single-account mode the function's own account, in its own region only."""
    home_region = clients("sagemaker").meta.region_name  # the region the function runs in (its clients' region)
    if not settings.is_organization:
        return AccountScope(deps, home_region=home_region)
    from flopsmeter.aws.sessions import AccountSessions, partition_of

    sts = clients("sts")
    assert settings.MEMBER_ROLE_NAME is not None  # the settings model requires it in organization mode
    sessions = AccountSessions(
        sts,
        role_name=settings.MEMBER_ROLE_NAME,
        build_client=member_clients or member_client_builder(),
        partition=partition_of(sts.meta.region_name),
    )
    return AccountScope(deps, sessions, home_region=home_region, member_regions=settings.member_regions)


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
    accounts: AccountScope | None = None
    rotation: RotationSettings | None = None
    if settings.is_organization:
        from flopsmeter.aws.cursor import RotationCursor

        accounts = account_scope(settings, deps, clients, member_clients)
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
    from flopsmeter.aws.glue_catalog import GlueCatalog
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
        catalog=GlueCatalog(clients("glue"), settings.GLUE_DATABASE, settings.COMPACTED_TABLE),
    )
