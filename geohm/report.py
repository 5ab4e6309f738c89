"""Reports for people and programs: report.json, report.md and quicklook figures.

Builds content only; :mod:`geohm.io.reports` writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["class_figure", "quicklook_figure", "render_markdown"]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _samples_section(samples: Mapping[str, Any]) -> list[str]:
    """Samples read, used per target, left out (with target and reason), censored values."""
    dropped = samples.get("dropped", [])
    lines = [
        "## Samples",
        "",
        f"{samples.get('total', '?')} points read, {samples.get('used', '?')} used, "
        f"{len(dropped)} left out of one or more targets.",
        "",
    ]
    per_target = samples.get("per_target", {})
    if per_target:
        lines += [
            "| target | used | left out | below detection limit (substituted) | zeros |",
            "|---|---|---|---|---|",
        ]
        for t, c in per_target.items():
            cens = f"{c['censored']} ({c['censored_rule']})" if c["censored"] else "0"
            lines.append(f"| {t} | {c['used']} | {c['left_out']} | {cens} | {c['zeros']} |")
        lines.append("")
    groups = samples.get("location_groups")
    if groups is not None:
        reps = samples.get("replicate_groups", [])
        lines.append(
            f"{groups} locations (samples on the same pixel are one location and always "
            "fall in the same split and fold)"
            + (
                f"; {len(reps)} hold several samples: "
                + "; ".join(", ".join(g) for g in reps[:10])
                + (" ..." if len(reps) > 10 else "")
                if reps
                else ""
            )
            + "."
        )
        lines.append("")
    for w in samples.get("warnings", []):
        lines += [f"**Warning:** {w}", ""]
    if dropped:
        lines += ["| id | target | reason |", "|---|---|---|"]
        lines += [
            f"| {d['id']} | {d.get('target', 'all')} | {d['reason']} |" for d in dropped
        ]
        lines.append("")
    return lines


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
        model choice (``auto``), maps, uncertainty, features, classifier, risk, outputs
        and timings (a section
        whose content is absent from ``report`` is left out).
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
    lines += _features_section(targets)
    lines += _classifier_section(report.get("classification"))
    lines += _risk_section(report.get("risk"))
    lines += _list_section("Outputs", [f"`{o}`" for o in report.get("outputs") or ()])
    timings = report.get("timings") or {}
    lines += _list_section("Timings (s)", [f"{k}: {v:.2f}" for k, v in timings.items()])
    return "\n".join(lines)


def _warnings_section(targets: Mapping[str, Any]) -> list[str]:
    """Every target's warnings, as quoted paragraphs at the top."""
    lines: list[str] = []
    for t in targets.values():
        for w in t.get("warnings", []):
            lines += [f"> **Warning.** {w}", ""]
    return lines


def _inputs_section(inputs: Mapping[str, Any]) -> list[str]:
    """The input files and settings, one bullet each."""
    if not inputs:
        return []
    lines = ["## Inputs", ""]
    lines += [f"- **{k}**: {v}" for k, v in inputs.items()]
    lines.append("")
    return lines


def _accuracy_section(targets: Mapping[str, Any]) -> list[str]:
    """One row per target and validation set (test, cv, cv_spatial) present."""
    lines = [
        "## Accuracy",
        "",
        "Test: held-out samples never seen in training. CV: k-fold cross-validation on the "
        "training samples (pooled out-of-fold predictions); cv_spatial: the same with whole "
        "spatial blocks (side = the variogram range unless set) held out together, which random "
        "folds flatter. RMSE and MAE in mg/kg; MRE is the mean relative error. Flat map: "
        "the RMSE of predicting the training mean everywhere; skill = 1 - RMSE / flat-map "
        "RMSE (0: no better than a flat map, below 0: worse).",
        "",
        "| target | model | set | n | RMSE | MAE | R2 | MRE | flat-map RMSE | skill |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for target, t in targets.items():
        auto = t.get("auto")
        model = f"{t['model']}: {auto['chosen']}" if auto else t["model"]
        for set_name in ("test", "cv", "cv_spatial"):
            m = t.get(set_name)
            if not m:
                continue
            lines.append(
                f"| {target} | {model} | {set_name} | {m.get('n', '-')} | "
                f"{_fmt(m.get('rmse'))} | {_fmt(m.get('mae'))} | {_fmt(m.get('r2'))} | "
                f"{_fmt(m.get('mre'))} | {_fmt(m.get('rmse_null'))} | {_fmt(m.get('skill'))} |"
            )
    lines.append("")
    return lines


def _auto_section(targets: Mapping[str, Any]) -> list[str]:
    """``model: auto``: every candidate ranked by CV on the same folds, and the choice."""
    chosen = {k: t["auto"] for k, t in targets.items() if t.get("auto")}
    if not chosen:
        return []
    lines = [
        "## Model choice (auto)",
        "",
        "Every candidate was cross-validated on the same folds of the training samples "
        "(whole spatial blocks held out together), the stacked ensemble refitted whole "
        "(members and meta-learner) in every fold. RMSE and MAE in mg/kg; skill = 1 - RMSE "
        "/ flat-map RMSE. "
        "Coverage: share of each fold's samples inside a conformal interval from the other "
        "folds' errors (the same check for every candidate). Seconds: time of its CV.",
        "",
    ]
    for target, a in chosen.items():
        folds = a.get("folds", {})
        block = folds.get("block_size_m")
        nominal = a.get("interval_nominal")
        lines += [
            f"**{target}**: {folds.get('n', '?')} folds, {folds.get('kind', '?')}"
            + (f" of {block:.0f} m" if block else "")
            + (f"; nominal coverage {nominal:.0%}" if nominal else "")
            + f". Chosen: **{a['chosen']}**: {a['why']}.",
            "",
            "| rank | candidate | RMSE | MAE | R2 | skill | coverage | seconds | note |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in a["ranking"]:
            if r.get("status") != "scored":
                lines.append(
                    f"| - | {r['candidate']} | - | - | - | - | - | - | "
                    f"{r['status']}: {r.get('reason', '')} |"
                )
                continue
            note = r.get("note", "")
            if r.get("weights"):
                w = ", ".join(f"{k} {v:.2f}" for k, v in r["weights"].items())
                note = f"weights {w}" + (f"; {note}" if note else "")
            lines.append(
                f"| {r['rank']} | {r['candidate']} | {_fmt(r['rmse'])} | {_fmt(r['mae'])} | "
                f"{_fmt(r['r2'])} | {_fmt(r['skill'])} | {_fmt(r.get('interval_coverage'))} | "
                f"{_fmt(r.get('seconds'))} | {note} |"
            )
        lines.append("")
    return lines


def _maps_section(targets: Mapping[str, Any]) -> list[str]:
    """Map statistics per target, then each target's area by concentration class."""
    lines = [
        "## Maps",
        "",
        "| target | min | max | mean | std | pixels |",
        "|---|---|---|---|---|---|",
    ]
    for target, t in targets.items():
        s = t.get("map_stats", {})
        lines.append(
            f"| {target} | {_fmt(s.get('min'))} | {_fmt(s.get('max'))} | {_fmt(s.get('mean'))} | "
            f"{_fmt(s.get('std'))} | {_fmt(s.get('pixels'))} |"
        )
    lines.append("")
    for target, t in targets.items():
        bins = t.get("area_by_concentration")
        if bins:
            lines += [
                f"**{target}: share of the mapped area by concentration**",
                "",
                "| mg/kg | area |",
                "|---|---|",
            ]
            lines += [f"| {b['from']:g}-{b['to']:g} | {b['fraction']:.1%} |" for b in bins]
            lines.append("")
    return lines


def _uncertainty_section(targets: Mapping[str, Any]) -> list[str]:
    """Interval method, nominal level, test coverage and widths of the targets that have one."""
    uncertain = {k: t for k, t in targets.items() if t.get("uncertainty")}
    if not uncertain:
        return []
    lines = [
        "## Uncertainty",
        "",
        "`<target>_uncertainty.tif`: width (mg/kg) of the central prediction interval. "
        "Coverage: share of the hold-out test samples inside their interval (the "
        "interval model never saw them).",
        "",
        "| target | method | nominal | test coverage | mean width (test) | mean width (map) |",
        "|---|---|---|---|---|---|",
    ]
    for target, t in uncertain.items():
        u = t["uncertainty"]
        test = u.get("test") or {}
        m = (t.get("uncertainty_map") or {}).get("map_stats", {})
        lines.append(
            f"| {target} | {u['method']}{' (conformal)' if u.get('calibrated') else ''} | "
            f"{u['nominal']:.0%} | {_fmt(test.get('coverage'))} (n={test.get('n', 0)}) | "
            f"{_fmt(test.get('mean_width'))} | {_fmt(m.get('mean'))} |"
        )
    lines.append("")
    for target, t in uncertain.items():
        ql = (t.get("uncertainty_map") or {}).get("quicklook")
        if ql:
            lines += [f"![{target} uncertainty]({ql})", ""]
    return lines


def _features_section(targets: Mapping[str, Any]) -> list[str]:
    """Each target's features and its map quicklook."""
    lines: list[str] = []
    for target, t in targets.items():
        lines.append(
            f"**{target}** features ({len(t.get('features', []))}): "
            f"{', '.join(t.get('features', []))}"
        )
        lines.append("")
        if t.get("quicklook"):
            lines += [f"![{target}]({t['quicklook']})", ""]
    return lines


def _classifier_section(cls: Mapping[str, Any] | None) -> list[str]:
    """The contamination classifier: its labels, repeated stratified CV and confusion matrix."""
    if not cls:
        return []
    cv = cls["cv"]
    lines = [
        "## Contamination classifier",
        "",
        f"Model **{cls['model']}**; a sample is contaminated (1) when any of "
        + ", ".join(f"{k} > {v:g}" for k, v in cls["limits_mg_kg"].items())
        + f" mg/kg. Samples: {cls['labels']}.",
        "",
        f"Stratified {cv['folds_used']}-fold CV repeated {cv['repeats']} times "
        "(mean ± sd over the splits; macro averages):",
        "",
        "| accuracy | precision | recall | F1 |",
        "|---|---|---|---|",
        "| "
        + " | ".join(
            f"{cv[m]['mean']:.3f} ± {cv[m]['sd']:.3f}"
            for m in ("accuracy", "precision", "recall", "f1")
        )
        + " |",
        "",
        "Confusion matrix summed over the splits (rows: true 0/1, columns: predicted 0/1): "
        f"{cv['confusion_matrix']}",
        "",
    ]
    if cls.get("quicklook"):
        lines += [f"![contamination]({cls['quicklook']})", ""]
    return lines


def _risk_section(risk: Mapping[str, Any] | None) -> list[str]:
    """The standard and screening values, each risk layer's class areas, and the notes."""
    if not risk:
        return []
    values = ", ".join(
        f"{k} {v:g} mg/kg" for k, v in risk["screening_values_mg_kg"].items() if v is not None
    )
    lines = [
        "## Risk",
        "",
        f"Standard **{risk['standard']}**, land use {risk['land_use']}, pH {risk['ph']}"
        + (f"; screening values: {values}." if values else "."),
        "",
    ]
    for name, layer in risk["layers"].items():
        if "class_area_fraction" in layer:
            lines += [f"**{name}** (share of mapped area)", "", "| class | area |", "|---|---|"]
            lines += [
                f"| {label} | {frac:.1%} |" for label, frac in layer["class_area_fraction"].items()
            ]
            lines.append("")
        if layer.get("quicklook"):
            lines += [f"![{name}]({layer['quicklook']})", ""]
    lines += [f"- {n}" for n in risk.get("notes", [])]
    lines.append("")
    return lines


def _list_section(title: str, items: list[str]) -> list[str]:
    """A titled bullet list; nothing when there are no items."""
    if not items:
        return []
    return [f"## {title}", "", *(f"- {item}" for item in items), ""]


def quicklook_figure(
    array: np.ndarray,
    extent: tuple[float, float, float, float],
    *,
    title: str,
    units: str,
    vmin: float,
    vmax: float,
    points: np.ndarray | None = None,
    cmap: str = "YlOrRd",
) -> Any:
    """A map figure with a colour bar (and sample points), for report.md.

    Parameters
    ----------
    array : numpy.ndarray
        (y, x) values, NaN for nodata.
    extent : tuple
        (left, right, bottom, top) in map units.
    title, units : str
        Figure title and colour-bar label.
    vmin, vmax : float
        Colour limits (the same as the QGIS style's).
    points : numpy.ndarray, optional
        (n, 2) sample coordinates in map units.
    """
    # The object-oriented Figure (no pyplot): no global backend or figure state is touched,
    # so this is safe in notebooks and threads.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.subplots()
    im = ax.imshow(array, extent=extent, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if points is not None and len(points):
        ax.scatter(
            points[:, 0],
            points[:, 1],
            s=10,
            facecolors="none",
            edgecolors="k",
            linewidths=0.7,
            label="samples",
        )
        ax.legend(loc="lower right", fontsize=7)
    ax.set_title(title)
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=ax, shrink=0.85, label=units)
    return fig


def class_figure(
    array: np.ndarray,
    extent: tuple[float, float, float, float],
    *,
    title: str,
    classes: list[tuple[int, str, str]],
    points: np.ndarray | None = None,
) -> Any:
    """A class map with a legend of class names (255 = nodata, transparent)."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    codes = [c for c, _, _ in classes]
    cmap = ListedColormap([color for _, _, color in classes])
    norm = BoundaryNorm([c - 0.5 for c in codes] + [codes[-1] + 0.5], cmap.N)
    data = np.where(np.isin(array, codes), array, np.nan)
    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.subplots()
    ax.imshow(data, extent=extent, cmap=cmap, norm=norm, interpolation="nearest")
    if points is not None and len(points):
        ax.scatter(
            points[:, 0], points[:, 1], s=10, facecolors="none", edgecolors="k", linewidths=0.7
        )
    ax.legend(
        handles=[Patch(facecolor=color, edgecolor="k", label=label) for _, label, color in classes],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )
    ax.set_title(title)
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    return fig
