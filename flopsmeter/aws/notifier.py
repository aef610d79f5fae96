"""Announcing a new record: the "FLOPs Classification Recorded" EventBridge event and the SNS alert."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter import contract
from flopsmeter.aws.errors import is_transient_code, translate
from flopsmeter.errors import PermanentError, TransientError


class Notifier:
    def __init__(
        self, events_client: Any, sns_client: Any | None, *, bus_name: str = "default", topic_arn: str | None = None
    ) -> None:
        self.events = events_client
        self.sns = sns_client
        self.bus_name = bus_name
        self.topic_arn = topic_arn

    def recorded(self, detail: Mapping[str, Any], *, resources: list[str]) -> None:
        entry = {
            "Source": contract.RECORDED_EVENT_SOURCE,
            "DetailType": contract.RECORDED_EVENT_DETAIL_TYPE,
            "Detail": json.dumps(dict(detail), sort_keys=True),
            "EventBusName": self.bus_name,
            "Resources": resources,
        }
        try:
            reply = self.events.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as err:
            raise translate(err, "EventBridge PutEvents") from err
        if reply.get("FailedEntryCount"):
            failed = reply.get("Entries", [{}])[0]
            code = str(failed.get("ErrorCode", ""))
            message = f"EventBridge PutEvents entry failed: {code} {failed.get('ErrorMessage', '')}".strip()
            if is_transient_code(code) or not code:
                raise TransientError(message)
            raise PermanentError(message)

    def alert(self, subject: str, message: str, attributes: Mapping[str, str]) -> None:
        if not self.topic_arn or self.sns is None:
            return
        try:
            self.sns.publish(
                TopicArn=self.topic_arn,
                Subject=subject[:100],
                Message=message,
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": str(v)[:256]} for k, v in attributes.items()
                },
            )
        except (ClientError, BotoCoreError) as err:
            raise translate(err, "SNS Publish") from err
