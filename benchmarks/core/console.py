"""How the commands end on Ctrl-C and SIGTERM: one line, the conventional exit code, results kept.

A command imports this module first: from then on a Ctrl-C that lands outside its `main()` (while
torch is being imported, say) ends the process with one line instead of a traceback. Inside
`main()`, `interruptible()` turns SIGTERM (a scheduler's preemption, `kill`) into `Terminated`,
a KeyboardInterrupt, so that it takes the same clean path as Ctrl-C.
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

from benchmarks.core.cli import fail

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """SIGTERM received: handled like Ctrl-C."""


def _one_line_interrupt(kind, value, traceback) -> None:
    if issubclass(kind, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
    else:
        sys.__excepthook__(kind, value, traceback)


sys.excepthook = _one_line_interrupt


@contextmanager
def interruptible():
    """Within the block, SIGTERM raises `Terminated` in the main thread (elsewhere: unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted(error: KeyboardInterrupt, what: str) -> int:
    """Print `what` happened to the results after Ctrl-C or SIGTERM; the exit code to return."""
    if isinstance(error, Terminated):
        return fail(f"terminated (SIGTERM): {what}", EXIT_TERMINATED)
    return fail(f"interrupted: {what}", EXIT_INTERRUPTED)
