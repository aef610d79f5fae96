"""Where the reconciler's round-robin over member accounts resumes: one SSM parameter (organization mode).

The parameter holds the index of the next account to visit as JSON (``{"next": 7}``). Without a parameter
(``RECONCILE_CURSOR_PARAMETER`` unset, tests) the cursor lives in this object only. A missing or unreadable value
starts the rotation at 0: losing the cursor only changes who goes first, never who is visited.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import is_missing_parameter, translate


class RotationCursor:
    def __init__(self, ssm: Any = None, parameter: str | None = None) -> None:
        self.ssm = ssm
        self.parameter = parameter
        self._value = 0

    def load(self) -> int:
        if self.ssm is None or self.parameter is None:
            return self._value
        try:
            raw = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except ClientError as err:
            if is_missing_parameter(err):
                return 0
            raise translate(err, f"SSM GetParameter {self.parameter}") from err
        except BotoCoreError as err:
            raise translate(err, f"SSM GetParameter {self.parameter}") from err
        try:
            value = json.loads(raw).get("next", 0)
        except (ValueError, AttributeError):
            return 0
        return value if isinstance(value, int) and value >= 0 else 0

    def save(self, value: int) -> None:
        self._value = value
        if self.ssm is None or self.parameter is None:
            return
        try:
            self.ssm.put_parameter(
                Name=self.parameter, Value=json.dumps({"next": value}), Type="String", Overwrite=True
            )
        except (ClientError, BotoCoreError) as err:
            raise translate(err, f"SSM PutParameter {self.parameter}") from err
