"""Facts about the machine that have no portable one-liner in Python 3.11."""

from __future__ import annotations

import os

__all__ = ["usable_cpus"]


def usable_cpus() -> int:
    """CPUs this process may run on (at least 1).

    Its affinity mask where the OS has one (Linux), else every CPU of the machine (macOS,
    Windows).
    """
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        try:
            return max(len(getaffinity(0)), 1)
        except OSError:  # e.g. a sandbox that forbids the call
            pass
    return os.cpu_count() or 1
