"""Organization mode's reconciler: every member account it can assume into, a bounded share of each per run.

The accounts (``MEMBER_ACCOUNTS``, or Organizations ListAccounts) are visited round-robin: a run starts at the
cursor (``flopsmeter.aws.cursor``), visits at most ``accounts_per_run`` accounts, in each of them (and each member
region) looks at no more than ``jobs_per_account`` ended jobs (ListTrainingJobs pages of 100), and saves where the
next run starts. So one run's calls are spread over many accounts' own API quotas and bounded in each; an
organization larger than ``accounts_per_run`` is covered over several runs, each starting where the last stopped.
An account whose reader role cannot be assumed is reported (``AssumeRoleFailed``, logged with the reason) and
skipped; the next rotation tries it again. An account with more ended jobs than its share is logged as truncated
(the jobs past the share are not checked: raise ``RECONCILE_JOBS_PER_ACCOUNT``).

Whatever one account does, the run goes on and saves its place: an account whose visit fails (ListTrainingJobs
throttled or refused, a timeout, anything unexpected) is reported in the run's result (``failed_accounts``), counted
as ``ReconcileFailed`` (the stack's ``ReconcileFailedAlarm`` alerts on it), logged with the reason, and remembered in
the cursor: the next run visits it again first, on top of its own share, so a passing fault costs that account one
run, not a whole rotation (which could outlast the lookback window). The others advance as if nothing happened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flopsmeter.contract import ServiceMetric
from flopsmeter.errors import TransientError
from flopsmeter.ports import Cursor, RotationState
from flopsmeter.service.dependencies import Dependencies, ServiceConfig
from flopsmeter.service.reconcile import ReconcileReport, reconcile


@dataclass(frozen=True)
class RotationPlan:
    accounts: tuple[str, ...]
    regions: tuple[str | None, ...] = (None,)  # None: the function's own region
    jobs_per_account: int = 500
    accounts_per_run: int = 50


@dataclass(frozen=True)
class AccountVisit:
    account: str
    region: str | None
    report: ReconcileReport | None = None
    unreachable: str | None = None  # why the reader role could not be assumed
    failed: str | None = None  # why the visit failed (the job listing refused, throttled, timed out): retried


@dataclass
class RotationReport:
    accounts: int = 0
    started_at: int = 0
    next_start: int = 0
    retried: list[str] = field(default_factory=list)  # accounts that failed in the last run, visited again first
    visits: list[AccountVisit] = field(default_factory=list)

    @property
    def failed_accounts(self) -> tuple[str, ...]:
        """Accounts with a failed visit in any region, in visiting order (the next run retries them)."""
        return tuple(dict.fromkeys(v.account for v in self.visits if v.failed))

    def as_dict(self) -> dict[str, object]:
        reports = [v.report for v in self.visits if v.report is not None]
        return {
            "accounts": self.accounts,
            "started_at": self.started_at,
            "next_start": self.next_start,
            "visited": list(dict.fromkeys(v.account for v in self.visits)),
            "retried": self.retried,
            "unreachable": {f"{v.account}/{v.region or '-'}": v.unreachable for v in self.visits if v.unreachable},
            "failed_accounts": {f"{v.account}/{v.region or '-'}": v.failed for v in self.visits if v.failed},
            "truncated": [f"{v.account}/{v.region or '-'}" for v in self.visits if v.report and v.report.truncated],
            "seen": sum(r.seen for r in reports),
            "already_recorded": sum(r.already_recorded for r in reports),
            "recorded": [job for r in reports for job in r.recorded],
            "deferred": {job: why for r in reports for job, why in r.deferred.items()},
            "failed": {job: why for r in reports for job, why in r.failed.items()},
            # issue 26: each visit's AWS Batch pass (what it recorded, and any listing it could not read)
            "batch": {
                f"{v.account}/{v.region or '-'}": v.report.batch for v in self.visits if v.report and v.report.batch
            },
        }


def this_run(accounts: Sequence[str], start: int, per_run: int) -> tuple[list[str], int]:
    """The accounts this run visits, from ``start`` round the list, and where the next run starts."""
    if not accounts:
        return [], 0
    start %= len(accounts)
    count = min(per_run, len(accounts))
    order = list(accounts[start:]) + list(accounts[:start])
    return order[:count], (start + count) % len(accounts)


def reconcile_accounts(
    deps_for: Callable[[str, str | None], Dependencies],
    plan: RotationPlan,
    cursor: Cursor,
    config: ServiceConfig,
    *,
    lookback_hours: float,
    log_deps: Dependencies,
    now: datetime | None = None,
) -> RotationReport:
    """Reconcile this run's share of ``plan.accounts`` (after the accounts the last run failed); ``log_deps`` carries
    the compliance account's sinks. The cursor is saved whatever happens in between."""
    state = cursor.load()
    visiting, next_start = this_run(plan.accounts, state.next, plan.accounts_per_run)
    retried = [a for a in dict.fromkeys(state.retry) if a in plan.accounts and a not in visiting]
    report = RotationReport(
        len(plan.accounts), state.next % max(1, len(plan.accounts)), next_start, retried[: plan.accounts_per_run]
    )
    try:
        for account in [*report.retried, *visiting]:
            for region in plan.regions:
                report.visits.append(_visit(deps_for, account, region, plan, config, lookback_hours, log_deps, now))
    finally:  # even if something outside any one account's visit fails: the next run never starts over
        cursor.save(RotationState(next_start, report.failed_accounts + tuple(retried[plan.accounts_per_run :])))
    return report


def _visit(
    deps_for: Callable[[str, str | None], Dependencies],
    account: str,
    region: str | None,
    plan: RotationPlan,
    config: ServiceConfig,
    lookback_hours: float,
    log_deps: Dependencies,
    now: datetime | None,
) -> AccountVisit:
    where = {"account": account, "region": region}
    try:
        deps = deps_for(account, region)
    except TransientError as err:
        log_deps.metrics.add_metric(ServiceMetric.ASSUME_ROLE_FAILED, "Count", 1)
        log_deps.log.warning("member account skipped this run", extra=where | {"reason": str(err)})
        return AccountVisit(account, region, unreachable=str(err))
    except Exception as err:  # noqa: BLE001 - whatever one account does, the others are visited and the cursor saved
        return _failed(account, region, err, log_deps)
    try:
        result = reconcile(deps, config, lookback_hours=lookback_hours, now=now, limit=plan.jobs_per_account)
    except Exception as err:  # noqa: BLE001 - as above
        return _failed(account, region, err, log_deps)
    if result.truncated:
        log_deps.log.warning(
            "more ended jobs in the lookback window than this account's share: the rest were not checked "
            "(raise RECONCILE_JOBS_PER_ACCOUNT)",
            extra=where | {"jobs_per_account": plan.jobs_per_account},
        )
    return AccountVisit(account, region, result)


def _failed(account: str, region: str | None, err: Exception, log_deps: Dependencies) -> AccountVisit:
    """One account's visit failed: counted (``ReconcileFailed``, alarmed), logged with why, retried next run."""
    reason = f"{type(err).__name__}: {err}"[:1000]
    log_deps.metrics.add_metric(ServiceMetric.RECONCILE_FAILED, "Count", 1)
    log_deps.log.error(
        "member account not reconciled this run (its job listing failed); visited again first in the next run",
        extra={"account": account, "region": region, "reason": reason, "error": type(err).__name__},
    )
    return AccountVisit(account, region, failed=reason)
