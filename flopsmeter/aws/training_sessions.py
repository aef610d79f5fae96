"""SageMaker training sessions (issue 26 item 1): DescribeTrainingSession, ListTrainingSessions, and the model
packages a session published to its group (ListModelPackages)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import is_unknown_resource, translate
from flopsmeter.domain.times import as_utc
from flopsmeter.errors import JobNotFound


class TrainingSessions:
    def __init__(self, client: Any) -> None:
        self.client = client

    def describe_session(self, name: str) -> Mapping[str, Any]:
        try:
            reply = self.client.describe_training_session(TrainingSessionName=name)
        except ClientError as err:
            if is_unknown_resource(err):
                raise JobNotFound(f"training session {name} does not exist: {err}") from err
            raise translate(err, f"DescribeTrainingSession {name}") from err
        except BotoCoreError as err:
            raise translate(err, f"DescribeTrainingSession {name}") from err
        return dict(reply.get("TrainingSessionDetail") or {})

    def sessions(self, statuses: tuple[str, ...], since: datetime | None = None) -> Iterator[Mapping[str, Any]]:
        """ListTrainingSessions summaries, one status at a time (the API filters on one)."""
        for status in statuses:
            request: dict[str, Any] = {"StatusEquals": status, "MaxResults": 100}
            if since is not None:
                request["CreationTimeAfter"] = since
            while True:
                try:
                    page = self.client.list_training_sessions(**request)
                except (ClientError, BotoCoreError) as err:
                    raise translate(err, f"ListTrainingSessions {status}") from err
                yield from page.get("TrainingSessionSummaries", [])
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]

    def checkpoints(self, group_arn: str, start: datetime, end: datetime) -> list[str]:
        group = group_arn.rsplit("/", 1)[-1]
        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_model_packages").paginate(
                ModelPackageGroupName=group, CreationTimeAfter=start, CreationTimeBefore=end
            )
            for page in pages:
                for summary in page.get("ModelPackageSummaryList", []):
                    created = as_utc(summary.get("CreationTime"))
                    if summary.get("ModelPackageArn") and (created is None or start <= created <= end):
                        found.append(str(summary["ModelPackageArn"]))
        except ClientError as err:
            if is_unknown_resource(err):
                return []
            raise translate(err, f"ListModelPackages {group}") from err
        except BotoCoreError as err:
            raise translate(err, f"ListModelPackages {group}") from err
        return sorted(found)
