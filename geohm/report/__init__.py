"""Reports for people and programs: report.json, report.md and quicklook figures.

Builds content only; :mod:`geohm.io.reports` writes it. The sections live in
:mod:`~geohm.report.sections` and :mod:`~geohm.report.trust`, the figures in
:mod:`~geohm.report.figures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geohm.report.figures import (
    class_figure,
    drivers_figure,
    next_samples_figure,
    quicklook_figure,
)
from geohm.report.sections import (
    _accuracy_section,
    _auto_section,
    _classifier_section,
    _features_section,
    _inputs_section,
    _maps_section,
    _risk_section,
    _samples_section,
    _uncertainty_section,
    _warnings_section,
)
from geohm.report.text import _list_section
from geohm.report.trust import (
    _accumulation_section,
    _drivers_section,
    _next_samples_section,
    _trust_section,
    _zones_section,
)

__all__ = [
    "class_figure",
    "drivers_figure",
    "next_samples_figure",
    "quicklook_figure",
    "render_markdown",
]


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: inputs, dropped samples, accuracy tables, map statistics, outputs.

    Parameters
    ----------
    report : mapping
        The content of ``report.json`` (see :mod:`geohm.pipeline`).

    Returns
    -------
    str
        Markdown text, one section after the other: warnings, inputs, samples, accuracy,
        model choice (``auto``), maps, uncertainty, where the map can be trusted (area of
        applicability), what drives the model, features, classifier, risk, area above the
        screening value (per zone), where to sample next, steps not computed, outputs and
        timings (a section whose content is absent from ``report`` is left out).
    """
    targets: Mapping[str, Any] = report.get("targets", {})
    lines = [f"# geohm report: {report['name']}", ""]
    lines += _warnings_section(targets)
    lines += _inputs_section(report.get("inputs", {}))
    samples = report.get("samples", {})
    if samples:
        lines += _samples_section(samples)
    lines += _accuracy_section(targets)
    lines += _auto_section(targets)
    lines += _maps_section(targets)
    lines += _uncertainty_section(targets)
    lines += _trust_section(targets)
    lines += _drivers_section(targets)
    lines += _features_section(targets)
    lines += _classifier_section(report.get("classification"))
    lines += _risk_section(report.get("risk"))
    lines += _zones_section(report.get("zones"))
    lines += _next_samples_section(report.get("next_samples"))
    lines += _accumulation_section(report.get("accumulation"))
    skipped = [f"{k}: {s}" for k, t in targets.items() for s in t.get("skipped") or ()]
    lines += _list_section("Not computed", skipped)
    lines += _list_section("Outputs", [f"`{o}`" for o in report.get("outputs") or ()])
    timings = report.get("timings") or {}
    lines += _list_section("Timings (s)", [f"{k}: {v:.2f}" for k, v in timings.items()])
    return "\n".join(lines)
