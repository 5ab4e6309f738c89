"""report.md of a ``geohm series`` job, from its report.json content."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["metrics_markdown", "series_markdown"]


def _num(v: Any, fmt: str = ".3f") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return format(v, fmt) if isinstance(v, float) else str(v)


def metrics_markdown(rows: Sequence[Mapping[str, Any]], *, skill: bool = True) -> str:
    """A table of RMSE / MAE / skill by model (rows) and horizon (column groups).

    Parameters
    ----------
    rows : sequence of mapping
        ``model``, ``horizon``, ``n``, ``rmse``, ``mae``, ``skill`` (one validation
        scheme of one metal).
    skill : bool
        Show the skill column.

    Returns
    -------
    str
        A Markdown table: one row per model, ``RMSE / MAE / skill`` per horizon.
    """
    horizons = sorted({int(r["horizon"]) for r in rows})
    models = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], int(r["horizon"])): r for r in rows}
    ns = [by.get((models[0], h), {}).get("n", 0) for h in horizons] if models else []
    what = "RMSE / MAE / skill" if skill else "RMSE / MAE"
    head = "| model | " + " | ".join(f"h={h} (n={n}): {what}" for h, n in zip(horizons, ns,
                                                                                strict=True))
    lines = [head + " |", "|---" * (len(horizons) + 1) + "|"]
    for m in models:
        cells = []
        for h in horizons:
            r = by.get((m, h), {})
            cell = f"{_num(r.get('rmse'))} / {_num(r.get('mae'))}"
            if skill:
                cell += f" / {_num(r.get('skill'), '+.2f')}"
            cells.append(cell)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def series_markdown(report: Mapping[str, Any]) -> str:
    """The whole report.md of a series job.

    Parameters
    ----------
    report : mapping
        The report.json content (:func:`geohm.series.run.run_series`).

    Returns
    -------
    str
    """
    d = report["data"]
    out = [
        f"# geohm series: {report['name']}",
        "",
        f"Data: `{d['source']}`: {d['rows']} samples at {d['sites']} sites, {d['first']} to "
        f"{d['last']}, on {d['steps']} {d['step']} steps (season {d['season']} steps); "
        f"{d['observed_share']:.0%} of the site-steps observed. Horizon {report['horizon']} "
        f"steps, {report['lags']} steps of history; LSTM seed {report['seed']} "
        f"({report['lstm']['members']} members, {report['lstm']['parameters']} parameters "
        "each).",
        "",
    ]
    for note in d.get("notes", []):
        out.append(f"- {note}")
    out.append("")
    for metal, m in report["metals"].items():
        out += [f"## {metal} ({report['units']})", ""]
        for scheme, title in (
            ("rolling_origin", "Rolling origin (every site, the last origins)"),
            ("leave_sites_out", "Leave sites out (held-out wells, last origin)"),
        ):
            rows = [r for r in m["metrics"] if r["scheme"] == scheme]
            if not rows:
                continue
            splits = [s for s in m["splits"] if s["scheme"] == scheme]
            out += [
                f"### {title}",
                "",
                f"{len(splits)} split(s): cutoffs "
                + ", ".join(sorted({s["cutoff"] for s in splits}))
                + ". Skill = 1 - RMSE / RMSE(persistence) on the same targets.",
                "",
                metrics_markdown(rows),
                "",
            ]
            cov = [c for c in m["coverage"] if c["scheme"] == scheme]
            if cov:
                out.append(
                    f"LSTM {report['interval']:.0%} interval coverage by horizon: "
                    + ", ".join(f"h={c['horizon']}: {_num(c['coverage'], '.2f')}" for c in cov)
                )
                out.append("")
        w = m["warnings"]
        out += [
            f"### Early warning: limit {m['threshold']:g} {report['units']}",
            "",
            "P(exceed within the horizon) from the LSTM ensemble; levels low < "
            f"{report['levels'][0]:g} <= medium < {report['levels'][1]:g} <= high.",
            "",
            "| site | last sample | last value | forecast h=1..H | P(exceed) | level |",
            "|---|---|---|---|---|---|",
        ]
        for r in sorted(w, key=lambda r: -r["p_exceed"]):
            steps = range(1, report["horizon"] + 1)
            fc = ", ".join(_num(r[f"forecast_h{h}"], ".2f") for h in steps)
            out.append(
                f"| {r['site']} | {r['last_time']} | {_num(r['last_value'], '.2f')} | {fc} | "
                f"{r['p_exceed']:.2f} | {r['level']} |"
            )
        out.append("")
    left = report.get("left_out", [])
    out += ["## Left out", ""]
    if not left:
        out.append("Nothing was left out.")
    for r in left:
        where = ", ".join(f"{k} {r[k]}" for k in ("site", "metal", "time", "row") if k in r)
        out.append(f"- {where}: {r['reason']}")
    out += ["", "## Outputs", ""] + [f"- `{o}`" for o in report.get("outputs", [])]
    return "\n".join(out) + "\n"
