"""Which regions a deployment reads jobs in, and what becomes of a job from any other region.

A job is read in the account and region its event names (``flopsmeter.functions.container.AccountScope``): the
function's own region, and in organization mode the member regions (``member_regions``, where the member stack
forwards events from and where the member reader role may read). A job from any other region cannot be read with
the grants the stack deploys, and no reconciler lists that region: rather than reading a same-named job elsewhere
or failing on an AccessDenied nobody follows up, ``check_region`` refuses it with ``RegionNotServed`` (permanent:
dead-lettered at once, with a reason that says what to change) and ``alert_region_not_served`` sends an alert.
"""

from __future__ import annotations

from collections.abc import Iterable

from flopsmeter.contract import ServiceMetric
from flopsmeter.errors import FlopsMeterError, RegionNotServed
from flopsmeter.service.dependencies import Dependencies, ServiceConfig


def served_regions(home_region: str, member_regions: Iterable[str] = ()) -> tuple[str, ...]:
    """The function's own region first, then the member regions (each once)."""
    return tuple(dict.fromkeys([home_region, *member_regions]))


def check_region(account: str | None, region: str, served: tuple[str, ...]) -> None:
    """``RegionNotServed`` unless ``region`` is one of ``served``."""
    if region in served:
        return
    raise RegionNotServed(
        f"the job ran in {region} (account {account or 'unknown'}), a region this deployment does not serve "
        f"({', '.join(served)}): nothing was read there and no reconciler lists it. Add {region} to member_regions "
        "and deploy (organization mode; a single-account deployment serves its own region only: deploy a stack in "
        f"{region}), then redrive this message",
        account=account,
        region=region,
        served=served,
    )


def alert_region_not_served(err: RegionNotServed, job: str | None, deps: Dependencies, config: ServiceConfig) -> None:
    """Count it and alert (SNS); an alert that cannot be sent is logged, never in the way of the dead letter."""
    deps.metrics.add_metric(ServiceMetric.REGION_NOT_SERVED, "Count", 1)
    if not config.alerts_enabled:
        return
    try:
        deps.publisher.alert(
            f"FLOPs Meter: a training job in {err.region}, a region this deployment does not serve",
            f"{err}\n\nJob: {job or 'unknown'}. No record was written; the event is in the dead-letter queue.",
            {"outcome": "region_not_served", "job": job or "", "region": err.region, "account": err.account or ""},
        )
    except FlopsMeterError as alert_err:
        deps.log.warning("region-not-served alert not sent", extra={"job": job, "error": str(alert_err)[:300]})
