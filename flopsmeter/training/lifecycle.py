"""How a metered run ends whatever happens: SIGTERM (SageMaker stop, spot reclaim), process exit, an exception.

``Lifecycle`` installs the SIGTERM handler (chaining the previous one) and an ``atexit`` hook that both call the
meter's ``close`` without a collective (no collective is possible in a signal handler or at exit).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger("flopsmeter.training")

CloseFn = Callable[[str, str], None]  # (status, reason): the meter's close without a collective


class Lifecycle:
    def __init__(self, close: CloseFn, *, handle_signals: bool) -> None:
        self._close = close
        self.handle_signals = handle_signals
        self._prev_sigterm: Any = None
        self._atexit_registered = False
        self._running = False

    def install(self) -> None:
        """Called on rank 0 when metering starts."""
        self._running = True
        if not self._atexit_registered:
            atexit.register(self._at_exit)
            self._atexit_registered = True
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def uninstall(self) -> None:
        """Called when the meter closes: the previous SIGTERM handler is back, the exit hook gone."""
        self._running = False
        self._restore_signal()
        if self._atexit_registered:
            atexit.unregister(self._at_exit)
            self._atexit_registered = False

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        logger.warning("SIGTERM received: writing the meter's totals")
        try:
            self._close("interrupted", "SIGTERM (job stopped or spot interruption)")
        finally:
            previous = self._prev_sigterm
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

    def _restore_signal(self) -> None:
        if self._prev_sigterm is None or threading.current_thread() is not threading.main_thread():
            return
        with contextlib.suppress(ValueError, TypeError):
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, self._prev_sigterm)
        self._prev_sigterm = None

    def _at_exit(self) -> None:
        if self._running:
            self._close("incomplete", "process exited before training ended")


def exit_status(exc_type: type[BaseException] | None, exc: BaseException | None) -> tuple[str, str | None, bool]:
    """(status, reason, collective) for leaving a ``with FlopsMeter(...)`` block."""
    if exc_type is None:
        return "completed", None, True
    if issubclass(exc_type, KeyboardInterrupt):
        return "interrupted", "KeyboardInterrupt", False
    return "failed", f"{exc_type.__name__}: {exc}", False
