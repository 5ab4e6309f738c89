"""Linux-only calls have a fallback (issue 13: 'any call that exists on Linux only')."""

from __future__ import annotations

import os

import pytest

from geohm._system import usable_cpus


def test_usable_cpus_with_and_without_an_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    if hasattr(os, "sched_getaffinity"):
        assert usable_cpus() == len(os.sched_getaffinity(0))
        monkeypatch.delattr(os, "sched_getaffinity")  # as on macOS and Windows
    assert usable_cpus() == (os.cpu_count() or 1)

    def forbidden(pid: int) -> set[int]:
        raise PermissionError("not allowed here")

    monkeypatch.setattr(os, "sched_getaffinity", forbidden, raising=False)
    assert usable_cpus() == (os.cpu_count() or 1)
