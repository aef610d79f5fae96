"""CloudTrail: LookupEvents over management events recorded by the emulator (moto 5.2.5 does not implement it),
an optional delivery lag, clearing events (a trail that never saw a call), an optional LookupEvents rate limit
(``set_cloudtrail_rate_limit``), and, while a trail is logging (moto's CreateTrail + StartLogging), each recorded
management event delivered to the default EventBridge bus as "AWS API Call via CloudTrail"."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flopsmeter.contract import CLOUDTRAIL_API_CALL
from flopsmeter.local.moto_ext.common import (
    CLEAR_PATH,
    LAG_PATH,
    aware,
    default_account,
    default_region,
    parse_time,
    post,
)

CLOUDTRAIL_LAG_ENV = "FLOPSMETER_LOCAL_CLOUDTRAIL_LAG_SECONDS"  # default delivery lag of a fresh backend
_LOOKUP_KEYS = {
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
}
_MAX_RESULTS = 50  # CloudTrail's own maximum and default page size


def patch() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse

    def lookup_events(self: Any) -> str:
        from moto.core.exceptions import JsonRESTError

        backend = self.cloudtrail_backend
        limit = getattr(backend, "_flopsmeter_rate_limit", None)
        if limit is not None and not limit.allow():
            raise JsonRESTError("ThrottlingException", "Rate exceeded")
        reply = lookup_cloudtrail_events(
            stored_events(backend),
            lag_seconds=_lag(backend),
            attributes=self._get_param("LookupAttributes") or [],
            start=parse_time(self._get_param("StartTime")),
            end=parse_time(self._get_param("EndTime")),
            max_results=self._get_param("MaxResults"),
            next_token=self._get_param("NextToken"),
        )
        return json.dumps(reply)

    CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]


def stored_events(backend: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] | None = getattr(backend, "_flopsmeter_events", None)
    if events is None:
        events = []
        backend._flopsmeter_events = events
    return events


def _lag(backend: Any) -> float:
    lag = getattr(backend, "_flopsmeter_lag_seconds", None)
    if lag is None:
        lag = float(os.environ.get(CLOUDTRAIL_LAG_ENV, "0") or 0)
    return float(lag)


def cloudtrail_backend(account_id: str, region: str) -> Any:
    from moto.cloudtrail.models import cloudtrail_backends

    return cloudtrail_backends[account_id][region]


def caller_identity(account_id: str, access_key: str, region: str) -> tuple[str, str]:
    """(principal id, ARN) of the caller, as moto's STS GetCallerIdentity sees it."""
    from moto.sts.models import sts_backends

    try:
        principal_id, arn, _ = sts_backends[account_id]["aws"].get_caller_identity(access_key, region)
    except Exception:  # noqa: BLE001 - an odd key never stops the create call
        return "AIDAEXAMPLEMOTOUSER", f"arn:aws:iam::{account_id}:user/moto"
    return str(principal_id), str(arn)


def _identity(principal_arn: str, principal_id: str, account_id: str, access_key_id: str) -> dict[str, Any]:
    kind = "AssumedRole" if ":assumed-role/" in principal_arn else "IAMUser"
    identity: dict[str, Any] = {
        "type": kind,
        "principalId": principal_id,
        "arn": principal_arn,
        "accountId": account_id,
        "accessKeyId": access_key_id,
    }
    if kind == "IAMUser":
        identity["userName"] = principal_arn.rsplit("/", 1)[-1]
    else:
        role_name = principal_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{account_id}:role/{role_name}",
                "accountId": account_id,
                "userName": role_name,
            },
        }
    return identity


@dataclass(frozen=True)
class ManagementEvent:
    """One management API call as CloudTrail records it (what ``record_cloudtrail_event`` stores)."""

    event_name: str
    event_source: str
    account_id: str
    region: str
    principal_arn: str
    principal_id: str = "AIDAEXAMPLE"
    access_key_id: str = "AKIAIOSFODNN7EXAMPLE"
    source_ip: str = "127.0.0.1"
    user_agent: str = "flopsmeter-local"
    request_parameters: dict[str, Any] | None = None
    response_elements: dict[str, Any] | None = None
    resources: list[dict[str, str]] = field(default_factory=list)
    event_time: datetime | None = None


def record_cloudtrail_event(call: ManagementEvent) -> dict[str, Any]:
    """Store one management event in the emulated CloudTrail of ``account_id``/``region``; returns it."""
    when = aware(call.event_time or datetime.now(UTC))
    event_id = str(uuid.uuid4())
    identity = _identity(call.principal_arn, call.principal_id, call.account_id, call.access_key_id)
    detail = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": call.event_source,
        "eventName": call.event_name,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
        "requestParameters": call.request_parameters,
        "responseElements": call.response_elements,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": call.account_id,
        "eventCategory": "Management",
    }
    event = {
        "EventId": event_id,
        "EventName": call.event_name,
        "ReadOnly": "false",
        "AccessKeyId": call.access_key_id,
        "EventTime": when.timestamp(),
        "EventSource": call.event_source,
        "Username": identity.get("userName") or call.principal_arn.rsplit("/", 1)[-1],
        "Resources": list(call.resources or []),
        "CloudTrailEvent": json.dumps(detail),
        # ResourceName may be the ARN too (of a training job, tuning job, pipeline execution or AutoML job)
        "_arns": [str(v) for v in (call.response_elements or {}).values() if isinstance(v, str)],
    }
    stored_events(cloudtrail_backend(call.account_id, call.region)).append(event)
    if trail_logging(call.account_id, call.region):
        _to_eventbridge(call.account_id, call.region, detail)
    return {k: v for k, v in event.items() if not k.startswith("_")}


def retime_cloudtrail_event(
    resource_arn: str, when: datetime, *, account_id: str | None = None, region: str | None = None
) -> int:
    """Move the stored event(s) that created ``resource_arn`` to ``when`` (a launch backdated in simulated time)."""
    moved = 0
    for event in stored_events(cloudtrail_backend(account_id or default_account(), region or default_region())):
        if resource_arn in event.get("_arns", []):
            event["EventTime"] = aware(when).timestamp()
            detail = json.loads(event["CloudTrailEvent"])
            detail["eventTime"] = aware(when).strftime("%Y-%m-%dT%H:%M:%SZ")
            event["CloudTrailEvent"] = json.dumps(detail)
            moved += 1
    return moved


def repoint_cloudtrail_event(
    old_arn: str, new_arn: str, replacements: dict[str, str] | None = None, *, account_id: str | None = None,
    region: str | None = None,
) -> int:  # fmt: skip
    """The stored event(s) that created ``old_arn`` now name ``new_arn`` (and each ``replacements`` key its value):
    a job the emulator created under its own id takes a replayed event's id."""
    moved = 0
    swaps = {old_arn: new_arn, **(replacements or {})}
    for event in stored_events(cloudtrail_backend(account_id or default_account(), region or default_region())):
        if old_arn in event.get("_arns", []):
            event["_arns"] = [swaps.get(a, a) for a in event["_arns"]]
            text = event["CloudTrailEvent"]
            for old, new in swaps.items():
                text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
            event["CloudTrailEvent"] = text
            moved += 1
    return moved


def trail_logging(account_id: str, region: str) -> bool:
    """Is a trail logging in this account and region? EventBridge sees API calls only then."""
    trails = getattr(cloudtrail_backend(account_id, region), "trails", {})
    return any(getattr(getattr(t, "status", None), "is_logging", False) for t in trails.values())


def _to_eventbridge(account_id: str, region: str, detail: dict[str, Any]) -> None:
    """Deliver a management event to the default bus as "AWS API Call via CloudTrail" (what a trail enables)."""
    from moto.events.models import events_backends

    source = "aws." + str(detail["eventSource"]).split(".", 1)[0]
    events_backends[account_id][region].put_events(
        [{"Source": source, "DetailType": CLOUDTRAIL_API_CALL, "Detail": json.dumps(detail), "EventBusName": "default"}]
    )


@dataclass
class RateLimit:
    """CloudTrail's LookupEvents quota (2 requests per second per account and region), on a clock of your choice."""

    rate_per_second: float = 2.0
    burst: float = 2.0
    clock: Callable[[], float] = time.monotonic
    calls: int = 0
    throttled: int = 0
    _tokens: float = -1.0
    _stamp: float = 0.0

    def allow(self) -> bool:
        now = self.clock()
        if self._tokens < 0:
            self._tokens, self._stamp = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate_per_second)
        self._stamp = now
        self.calls += 1
        if self._tokens < 1.0:
            self.throttled += 1
            return False
        self._tokens -= 1.0
        return True


def set_cloudtrail_rate_limit(
    limit: RateLimit | None, *, account_id: str | None = None, region: str | None = None
) -> RateLimit | None:
    """Throttle LookupEvents (``ThrottlingException``) beyond ``limit`` in this process (None: no limit, the
    default). The scale benchmark passes a limit on its simulated clock; the limit counts calls and throttles."""
    backend = cloudtrail_backend(account_id or default_account(), region or default_region())
    backend._flopsmeter_rate_limit = limit
    return limit


def matches(event: dict[str, Any], key: str, value: str) -> bool:
    if key == "ResourceName":
        names = [r.get("ResourceName") for r in event.get("Resources", [])] + event.get("_arns", [])
        return value in names
    if key == "ResourceType":
        return any(r.get("ResourceType") == value for r in event.get("Resources", []))
    return str(event.get(key)) == value


def lookup_cloudtrail_events(
    events: Iterable[dict[str, Any]],
    *,
    lag_seconds: float = 0.0,
    attributes: list[dict[str, str]] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """LookupEvents over stored events, with CloudTrail's validation errors and newest-first pagination."""
    from moto.core.exceptions import JsonRESTError

    attributes = attributes or []
    if len(attributes) > 1:
        raise JsonRESTError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    for attribute in attributes:
        if attribute.get("AttributeKey") not in _LOOKUP_KEYS or not attribute.get("AttributeValue"):
            raise JsonRESTError("InvalidLookupAttributesException", f"Invalid lookup attribute: {attribute}")
    if start and end and start > end:
        raise JsonRESTError("InvalidTimeRangeException", "Start time must be before end time.")
    page_size = _MAX_RESULTS if max_results is None else int(max_results)
    if not 1 <= page_size <= _MAX_RESULTS:
        raise JsonRESTError("InvalidMaxResultsException", f"MaxResults must be between 1 and {_MAX_RESULTS}.")
    offset = 0
    if next_token:
        try:
            offset = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except ValueError as err:
            raise JsonRESTError("InvalidNextTokenException", "Invalid NextToken.") from err

    delivered_before = (now or datetime.now(UTC)).timestamp() - lag_seconds
    selected = [
        e
        for e in events
        if e["EventTime"] <= delivered_before
        and (start is None or e["EventTime"] >= start.timestamp())
        and (end is None or e["EventTime"] <= end.timestamp())
        and all(matches(e, a["AttributeKey"], a["AttributeValue"]) for a in attributes)
    ]
    selected.sort(key=lambda e: e["EventTime"], reverse=True)
    page = selected[offset : offset + page_size]
    reply: dict[str, Any] = {"Events": [{k: v for k, v in e.items() if not k.startswith("_")} for e in page]}
    if offset + page_size < len(selected):
        reply["NextToken"] = base64.urlsafe_b64encode(str(offset + page_size).encode()).decode()
    return reply


def set_cloudtrail_lag(
    seconds: float, *, account_id: str | None = None, region: str | None = None, endpoint: str | None = None
) -> None:
    """Hide CloudTrail events younger than ``seconds`` from LookupEvents (0 delivers everything now)."""
    if seconds < 0:
        raise ValueError("lag must be >= 0 seconds")
    body: dict[str, Any] = {
        "seconds": float(seconds),
        "account_id": account_id or default_account(),
        "region": region or default_region(),
    }
    if endpoint:
        post(endpoint, LAG_PATH, body)
        return
    cloudtrail_backend(body["account_id"], body["region"])._flopsmeter_lag_seconds = body["seconds"]


def clear_cloudtrail_events(
    job_name: str | None = None,
    *,
    account_id: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
) -> int:
    """Drop stored events (those naming ``job_name``, or all): emulates a trail that never saw the call."""
    body = {"job_name": job_name, "account_id": account_id or default_account(), "region": region or default_region()}
    if endpoint:
        return int(post(endpoint, CLEAR_PATH, body)["removed"])
    return _clear(body)


def _clear(body: dict[str, Any]) -> int:
    events = stored_events(cloudtrail_backend(body["account_id"], body["region"]))
    keep = [e for e in events if body.get("job_name") and not matches(e, "ResourceName", body["job_name"])]
    removed = len(events) - len(keep)
    events[:] = keep
    return removed


def set_lag_route(body: dict[str, Any]) -> dict[str, Any]:
    set_cloudtrail_lag(float(body["seconds"]), account_id=body.get("account_id"), region=body.get("region"))
    return {"seconds": float(body["seconds"])}


def clear_route(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "removed": _clear(
            {
                **body,
                "account_id": body.get("account_id") or default_account(),
                "region": body.get("region") or default_region(),
            }
        )
    }
