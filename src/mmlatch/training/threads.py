"""How many torch CPU threads a command uses: what the machine has free, unless told.

torch's default (one thread per core) makes two runs on the same machine fight over every
core: each waits for the other's threads at every parallel region, and both run several
times slower than one after the other. So every command picks a count that fits what is
free, in this order (the first that is set wins):

1. ``OMP_NUM_THREADS`` in the environment (OpenMP's own setting: torch already obeys it);
2. an explicit request: ``--threads N`` / the config's ``threads``;
3. ``MMLATCH_THREADS`` in the environment;
4. automatic: the cores this process may run on (``os.sched_getaffinity``) minus the load of
   the other processes (the 1-minute load average), rounded, at least 1; split evenly between
   ``jobs`` runs at once (``mmlatch experiment --jobs N``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

ENV_VAR = "MMLATCH_THREADS"


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and where it came from (``OMP_NUM_THREADS``, ``requested``,
    ``MMLATCH_THREADS`` or ``auto``), with the cores and load it was chosen from."""

    threads: int
    source: str
    cores: int
    load: float
    #: glibc's allocator keeps freed memory ("kept") or not ("system"): see training/allocator.py
    allocator: str = "system"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_int(value: str | None, name: str) -> int | None:
    """``value`` as an integer >= 1; None when unset or empty; ValueError naming ``name`` otherwise."""
    if value is None or not value.strip():
        return None
    try:
        n = int(value.strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer (a thread count)")
    return n


def choose_threads(
    cores: int,
    load: float,
    requested: int | None = None,
    env: Mapping[str, str] | None = None,
    jobs: int = 1,
) -> ThreadChoice:
    """The thread count of one run (pure: no system calls).

    Args:
        cores: cores this process may use (>= 1).
        load: the machine's load average from other processes (runnable threads).
        requested: an explicit count (``--threads``); None: not asked.
        env: the environment (``OMP_NUM_THREADS``, ``MMLATCH_THREADS``).
        jobs: runs that will share the free cores (``--jobs``).
    Returns:
        The choice; ``auto`` gives ``max(1, round(cores - load) // jobs)``, never more than
        ``cores // jobs`` (at least 1).
    """
    env = env or {}
    cores = max(1, int(cores))
    load = max(0.0, float(load))
    jobs = max(1, int(jobs))
    omp = _positive_int(env.get("OMP_NUM_THREADS"), "OMP_NUM_THREADS")
    if omp is not None:
        return ThreadChoice(omp, "OMP_NUM_THREADS", cores, load)
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"--threads must be a positive integer, got {requested!r}")
        return ThreadChoice(requested, "requested", cores, load)
    ours = _positive_int(env.get(ENV_VAR), ENV_VAR)
    if ours is not None:
        return ThreadChoice(ours, ENV_VAR, cores, load)
    free = min(cores, max(1, int(round(cores - load))))
    return ThreadChoice(max(1, free // jobs), "auto", cores, load)


def machine_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def machine_load() -> float:
    """The 1-minute load average (0 where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def configure_threads(requested: int | None = None, jobs: int = 1) -> ThreadChoice:
    """Choose the thread count for this machine now (see :func:`choose_threads`) and give it
    to torch (``torch.set_num_threads``); also keep freed memory in the process
    (:func:`mmlatch.training.allocator.configure_allocator`). Returns the choice."""
    import torch

    from mmlatch.training.allocator import configure_allocator

    choice = choose_threads(machine_cores(), machine_load(), requested, os.environ, jobs)
    torch.set_num_threads(choice.threads)
    return replace(choice, allocator=configure_allocator())


__all__ = ["ENV_VAR", "ThreadChoice", "choose_threads", "configure_threads", "machine_cores", "machine_load"]
