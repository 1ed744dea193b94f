"""How many CPUs this process may use: the default for embedding workers and encoder threads."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """The CPUs this process may run on, which can be fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
