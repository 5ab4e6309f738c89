"""The sections of report.md about samples, accuracy, model choice, maps and risk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geohm.report.text import _fmt, _table

__all__: list[str] = []


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
        held = "; ".join(", ".join(g) for g in reps[:10]) + (" ..." if len(reps) > 10 else "")
        several = f"; {len(reps)} hold several samples: {held}" if reps else ""
        lines += [
            f"{groups} locations (samples on the same pixel are one location and always "
            f"fall in the same split and fold){several}.",
            "",
        ]
    for w in samples.get("warnings", []):
        lines += [f"**Warning:** {w}", ""]
    if dropped:
        rows = [(d["id"], d.get("target", "all"), d["reason"]) for d in dropped]
        lines += _table(("id", "target", "reason"), rows)
    return lines


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
    stats = ("min", "max", "mean", "std", "pixels")
    rows = [[k, *(_fmt(t.get("map_stats", {}).get(s)) for s in stats)] for k, t in targets.items()]
    lines = ["## Maps", "", *_table(("target", *stats), rows)]
    for target, t in targets.items():
        bins = t.get("area_by_concentration") or ()
        area = [(f"{b['from']:g}-{b['to']:g}", f"{b['fraction']:.1%}") for b in bins]
        if area:
            lines += [f"**{target}: share of the mapped area by concentration**", ""]
            lines += _table(("mg/kg", "area"), area)
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
            rows = [(c, f"{f:.1%}") for c, f in layer["class_area_fraction"].items()]
            lines += [f"**{name}** (share of mapped area)", "", *_table(("class", "area"), rows)]
        if layer.get("quicklook"):
            lines += [f"![{name}]({layer['quicklook']})", ""]
    lines += [f"- {n}" for n in risk.get("notes", [])]
    lines.append("")
    return lines
