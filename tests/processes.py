"""Child processes the tests start (servers, simulators): stopped as an operator would."""

from __future__ import annotations

import os
import signal
import subprocess


def interrupt(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGINT (Ctrl-C) and wait for the process to exit; SIGKILL it if it has not in `timeout_s`."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
    try:
        proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
