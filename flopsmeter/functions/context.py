"""What invoking a function hands it besides the event: the Lambda context, as a protocol.

In AWS the Lambda runtime passes its own context object; the emulator (``flopsmeter local``, the demo), the tests and
the benchmarks pass ``flopsmeter.local.runner.LocalLambdaContext``. Both satisfy ``InvocationContext``
structurally: the attributes Powertools reads (``logger.inject_lambda_context``, the cold-start metric) and the
remaining time the compaction function budgets with. Each function's ``Handler`` takes it, so whoever invokes a
handler is checked against what it reads; the bodies keep Powertools' ``LambdaContext`` (a type hint, never
instantiated), which is what Powertools' own typed functions ask for.
"""

from __future__ import annotations

from typing import Protocol


class InvocationContext(Protocol):
    @property
    def function_name(self) -> str: ...

    @property
    def function_version(self) -> str: ...

    @property
    def invoked_function_arn(self) -> str: ...

    @property
    def memory_limit_in_mb(self) -> int: ...

    @property
    def aws_request_id(self) -> str: ...

    @property
    def log_group_name(self) -> str: ...

    @property
    def log_stream_name(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...
