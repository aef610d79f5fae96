"""HyperPod function (issue 26 point 3): SQS batches of job reports from HyperPod jobs' meters, and a daily schedule
that compares every cluster's day with its reported jobs.

Per report: parse the body (a claim), read SQS's ``SenderId`` (who signed the send), verify and record
(``flopsmeter.service.hyperpod``). A permanent failure (malformed, untrusted, unknown cluster or role) is sent to the
reports queue's dead-letter queue with its reason on its first delivery; a transient one is retried. The scheduled
event (``source`` ``aws.events``) runs the cluster pass for yesterday (``flopsmeter.service.hyperpod_clusters``) in
this account and, in organization mode, in every member account and region through the member reader role.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from flopsmeter.contract import ServiceMetric
from flopsmeter.domain.hyperpod import CALLER_ARN
from flopsmeter.errors import PermanentError, TransientError
from flopsmeter.functions.container import AccountScope, ClientFactory, account_scope, aws_client
from flopsmeter.functions.context import InvocationContext
from flopsmeter.functions.dead_lettering import send_to_dead_letters
from flopsmeter.functions.hyperpod_models import MAX_REASON, parse_report
from flopsmeter.functions.observability import logger, metrics, tracer
from flopsmeter.functions.settings import HyperPodSettings
from flopsmeter.ports import ClusterSource
from flopsmeter.service.dependencies import Dependencies, ServiceConfig
from flopsmeter.service.hyperpod import ReportMessage, record_report
from flopsmeter.service.hyperpod_clusters import compare_clusters

if TYPE_CHECKING:
    from flopsmeter.aws.dead_letters import DeadLetterQueue
    from flopsmeter.aws.sessions import ClientBuilder

processor = BatchProcessor(event_type=EventType.SQS)
Handler = Callable[[dict[str, Any], InvocationContext], Any]


@dataclass(frozen=True)
class HyperPodContainer:
    deps: Dependencies
    config: ServiceConfig
    clusters: ClusterSource  # this account's
    account_id: str
    region: str
    dead_letters: DeadLetterQueue | None = None
    accounts: AccountScope | None = None  # organization mode
    member_accounts: tuple[str, ...] = ()
    member_regions: tuple[str, ...] = ()
    organizations: Any = None

    def clusters_for(self, account: str, region: str | None = None) -> ClusterSource:
        if self.accounts is None or self.accounts.sessions is None or self.accounts.sessions.is_home(account):
            return self.clusters
        from flopsmeter.aws.hyperpod import HyperPodClusters

        clients = self.accounts.sessions.clients_for(account, region)
        return HyperPodClusters(clients("sagemaker"), clients("iam"))


def build_hyperpod(
    settings: HyperPodSettings,
    clients: ClientFactory = aws_client,
    *,
    metrics: Any,
    log: Any,
    member_clients: ClientBuilder | None = None,
) -> HyperPodContainer:
    from flopsmeter.aws.dead_letters import DeadLetterQueue
    from flopsmeter.aws.hyperpod import HyperPodClusters
    from flopsmeter.functions.container import classification_dependencies

    deps = classification_dependencies(settings, clients, metrics=metrics, log=log)
    sts = clients("sts")
    url = settings.DEAD_LETTER_QUEUE_URL
    accounts = account_scope(settings, deps, clients, member_clients)
    return HyperPodContainer(
        deps=deps,
        config=settings.service_config(),
        clusters=HyperPodClusters(clients("sagemaker"), clients("iam")),
        account_id=str(sts.get_caller_identity()["Account"]),
        region=str(sts.meta.region_name),
        dead_letters=DeadLetterQueue(clients("sqs"), url) if url else None,
        accounts=accounts,
        member_accounts=settings.MEMBER_ACCOUNTS,
        member_regions=settings.MEMBER_REGIONS,
        organizations=clients("organizations") if accounts is not None and not settings.MEMBER_ACCOUNTS else None,
    )


@functools.cache
def process_container() -> HyperPodContainer:
    return build_hyperpod(HyperPodSettings.from_env(), metrics=metrics, log=logger)


def record_handler(record: SQSRecord, container: HyperPodContainer) -> None:
    fields: dict[str, Any] = {"message_id": record.message_id}
    try:
        report = parse_report(record.body)
        fields |= {"cluster": report.cluster, "job": report.job_id}
        claimed = CALLER_ARN.match(report.caller_arn)
        account = claimed.group(1) if claimed else container.account_id
        message = ReportMessage(report, record.attributes.sender_id, record.message_id)
        result = record_report(message, container.deps, container.clusters_for(account), container.config)
        logger.info("hyperpod report handled", extra=fields | {"status": result.status, "key": result.key})
    except PermanentError as err:
        metrics.add_metric(name=ServiceMetric.HYPERPOD_REPORT_REFUSED, unit="Count", value=1)
        logger.error("hyperpod report refused", extra=fields | {"reason": str(err)[:MAX_REASON],
                                                               "error": type(err).__name__})  # fmt: skip
        if not send_to_dead_letters(record, err, fields, container.dead_letters, metrics=metrics, logger=logger):
            raise
    except TransientError as err:
        logger.warning("transient failure; the report will be retried", extra=fields | {"reason": str(err)[:200]})
        raise


def cluster_pass(container: HyperPodContainer, now: datetime) -> dict[str, object]:
    """Yesterday, for every cluster of every account and region in scope."""
    day = (now - timedelta(days=1)).date()
    scope: list[tuple[str, str | None]] = [(container.account_id, None)]
    if container.accounts is not None:
        from flopsmeter.aws.organization import active_accounts

        members = container.member_accounts or active_accounts(container.organizations)
        scope += [(a, r) for a in members if a != container.account_id for r in container.member_regions or (None,)]
    compared = gaps = 0
    for account, region in scope:
        results = compare_clusters(
            container.clusters_for(account, region),
            container.deps.store,
            account_id=account,
            region=region or container.region,
            day=day,
            now=now,
            metrics=container.deps.metrics,
            log=logger,
        )
        compared += len(results)
        gaps += sum(1 for r in results if r.record.status == "gap")
    return {"day": day.isoformat(), "clusters": compared, "with_gap": gaps}


def handler_for(container: Callable[[], HyperPodContainer]) -> Handler:
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
        current = container()
        if event.get("source") == "aws.events":  # the daily schedule
            return cluster_pass(current, datetime.now(UTC))
        return process_partial_response(
            event=event,
            record_handler=functools.partial(record_handler, container=current),
            processor=processor,
            context=context,
        )

    entry: Handler = lambda_handler
    return entry


lambda_handler = handler_for(process_container)
