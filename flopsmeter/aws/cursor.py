"""Where the reconciler's round-robin over member accounts resumes: one SSM parameter (organization mode).

The parameter holds, as JSON, the index of the next account to visit and the accounts whose job listing failed in
the last run (``{"next": 7, "retry": ["111111111111"]}``; a value without ``retry``, as older versions wrote it,
reads as none). Without a parameter (``RECONCILE_CURSOR_PARAMETER`` unset, tests) the state lives in this object
only. A missing or unreadable value starts the rotation at 0 with nothing to retry: losing the cursor only changes
who goes first, never who is visited.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import is_missing_parameter, translate
from flopsmeter.ports import RotationState

# Accounts remembered for a retry: a standard-tier parameter holds 4 KB, ~250 account ids in this JSON. Past it the
# rest wait for their turn in the rotation (still reported in the run that failed them).
MAX_RETRY = 200


def parse_state(raw: str) -> RotationState:
    """The stored JSON as a ``RotationState``; anything unreadable is the start of a rotation."""
    try:
        data = json.loads(raw)
    except ValueError:
        return RotationState()
    if not isinstance(data, dict):
        return RotationState()
    value, retry = data.get("next", 0), data.get("retry", [])
    retry = retry if isinstance(retry, list) else []
    accounts = tuple(a for a in retry if isinstance(a, str) and len(a) == 12 and a.isdigit())
    return RotationState(value if isinstance(value, int) and value >= 0 else 0, accounts[:MAX_RETRY])


class RotationCursor:
    def __init__(self, ssm: Any = None, parameter: str | None = None) -> None:
        self.ssm = ssm
        self.parameter = parameter
        self._state = RotationState()

    def load(self) -> RotationState:
        if self.ssm is None or self.parameter is None:
            return self._state
        try:
            raw = self.ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]
        except ClientError as err:
            if is_missing_parameter(err):
                return RotationState()
            raise translate(err, f"SSM GetParameter {self.parameter}") from err
        except BotoCoreError as err:
            raise translate(err, f"SSM GetParameter {self.parameter}") from err
        return parse_state(raw)

    def save(self, state: RotationState) -> None:
        self._state = state
        if self.ssm is None or self.parameter is None:
            return
        value = {"next": state.next, "retry": list(state.retry[:MAX_RETRY])}
        try:
            self.ssm.put_parameter(Name=self.parameter, Value=json.dumps(value), Type="String", Overwrite=True)
        except (ClientError, BotoCoreError) as err:
            raise translate(err, f"SSM PutParameter {self.parameter}") from err
