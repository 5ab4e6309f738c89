"""The sections of report.md about trust: area of applicability, drivers, zones, next samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geohm.report.text import _fmt, _pct, _table

__all__: list[str] = []

#: Zones listed per metal in report.md (all are in zones.gpkg).
_MAX_ZONES = 30


def _trust_section(targets: Mapping[str, Any]) -> list[str]:
    """Area of applicability per target: map share inside, threshold, error profile."""
    aoa = {k: t for k, t in targets.items() if t.get("applicability")}
    lines = [
        "## Where the map can be trusted",
        "",
        "Area of applicability (AOA; Meyer & Pebesma 2021): a pixel is inside when its "
        "dissimilarity index (DI: importance-weighted distance in factor space to the nearest "
        "sample over the mean distance between samples) is at most the threshold, the upper "
        "whisker of the samples' DI across CV folds. `<target>_di.tif`, `<target>_aoa.tif`.",
        "",
    ]
    for target, t in aoa.items():
        a, m = t["applicability"], t.get("aoa_map") or {}
        n = (m.get("pixels_inside") or 0) + (m.get("pixels_outside") or 0)
        text = f"**{target}**: "
        if m.get("share_inside") is not None:
            text += f"{_pct(m['share_inside'])} of the {n} mapped pixels inside the AOA; "
        text += (
            f"threshold DI {_fmt(a.get('threshold'))} (folds: {a.get('folds', '?')}), "
            f"{_pct(a.get('train_inside_share'))} of the training samples inside."
        )
        prof = a.get("error_profile") or {}
        if prof.get("di"):
            di, err = prof["di"], prof["abs_error_mg_kg"]
            text += (
                f" Expected |error| {_fmt(err[0])} mg/kg at DI {_fmt(di[0])}, {_fmt(err[-1])} "
                f"mg/kg at DI {_fmt(di[-1])} ({prof.get('n_used')} CV predictions)."
            )
        elif prof.get("skipped"):
            text += f" No error profile: {prof['skipped']}."
        notes = [
            f"sample {s.get('id', s.get('row'))} left out: {s['reason']}"
            for s in a.get("samples_left_out") or ()
        ]
        if a.get("constant_factors"):
            notes.append("constant factors (no weight): " + ", ".join(a["constant_factors"]))
        shift = (a.get("covariate_shift") or {}).get("share_outside")
        if shift is not None:
            notes.append(f"{_pct(shift)} of the target-year samples outside the source's AOA")
        lines += [text, "", *(f"- {n}" for n in notes + a.get("notes", [])), ""]
    return lines if aoa else []


def _drivers_section(targets: Mapping[str, Any]) -> list[str]:
    """Permutation importance (top 10) and the partial-dependence figure of each target."""
    imp = {k: t for k, t in targets.items() if (t.get("importance") or {}).get("factors")}
    lines = [
        "## What drives the model",
        "",
        "Permutation importance: increase of the RMSE on a held-out CV fold when a factor is "
        "shuffled within it (mean ± sd over folds and repeats; 0 or below: no importance; "
        "correlated factors share theirs). The 10 most important:",
        "",
    ]
    for target, t in imp.items():
        i = t["importance"]
        top = i["factors"][:10]
        lines += [
            f"**{target}**: {len(i.get('folds', []))} folds, {i.get('folds_kind', '?')}, "
            f"{i.get('n_repeats', '?')} shuffles each.",
            "",
        ]
        rows = [(f["rank"], f["factor"], f"{_fmt(f['mean'])} ± {_fmt(f['sd'])}") for f in top]
        lines += _table(("rank", "factor", "RMSE increase (mg/kg)"), rows)
        pd = t.get("partial_dependence") or ()
        skipped = "; ".join(f"{p['factor']} ({p['skipped']})" for p in pd if p.get("skipped"))
        lines += [f"No partial-dependence curve for {skipped}.", ""] if skipped else []
        fig = t.get("drivers_figure")
        lines += [f"![{target} drivers]({fig})", ""] if fig else []
    return lines if imp else []


def _zones_section(zones: Mapping[str, Any] | None) -> list[str]:
    """Areas above the screening value: the scene, outside the zones and each zone."""
    if not zones or not zones.get("metals"):
        return []
    where = f" Zones: `{zones['file']}` (id `{zones.get('id')}`)." if zones.get("file") else ""
    lines = [
        "## Area above the screening value",
        "",
        "Expected: sum of P(C > S) x pixel area; certain: the interval's lower bound is above "
        f"the screening value S; possible: its upper bound is. Shares of the mapped area.{where}",
        "",
    ]
    header = ("zone", "mapped ha", "expected ha", "certain ha", "possible ha", "expected share")
    stats = ("mapped_ha", "expected_ha", "certain_ha", "possible_ha")
    for metal, m in zones["metals"].items():
        s = (zones.get("screening_mg_kg") or {}).get(metal)
        named = [("**scene**", m.get("scene")), ("outside the zones", m.get("outside_zones"))]
        named += [(z.get("zone"), z) for z in m.get("zones", [])[:_MAX_ZONES]]
        rows = [
            [n, *(_fmt(r.get(k)) for k in stats), _pct(r.get("expected_share"))]
            for n, r in named
            if r
        ]
        lines += [f"**{metal}** (S: {_fmt(s)}{' mg/kg' if isinstance(s, int | float) else ''})", ""]
        lines += _table(header, rows)
        more = len(m.get("zones", [])) - _MAX_ZONES
        lines += [f"{more} more zones in `{zones.get('file')}`.", ""] if more > 0 else []
    outside = ", ".join(map(str, zones.get("zones_outside_grid") or ()))
    return lines + ([f"Zones outside the grid: {outside}.", ""] if outside else [])


def _next_samples_section(design: Mapping[str, Any] | None) -> list[str]:
    """The suggested sample points (the first 10) and the design's notes."""
    if not design:
        return []
    files = ", ".join(f"`{f}`" for f in design.get("files", []))
    lines = [
        "## Where to sample next",
        "",
        (f"{files}: " if files else "")
        + f"{design.get('n', '?')} points for {design.get('target', '?')}, ranked by "
        "score = closeness of P(C > S) to 0.5 x interval width (share of the widest) x DI, "
        f"at least {_fmt(design.get('min_spacing_m'))} m from each other and from the samples."
        + ("" if design.get("exact", True) else " Not exact: the candidate pool ran out."),
        "",
    ]
    header = "metal|rank|x|y|lon|lat|score|closeness|width share|DI|P(C > S)|nearest sample (m)"
    cols = ("score", "closeness", "width_share", "di", "probability", "nearest_sample_m")
    rows = [
        [p.get("target", "-"), p.get("rank")]
        + [_fmt(p.get(c), 8) for c in ("x", "y", "lon", "lat")]
        + [_fmt(p.get(c)) for c in cols]
        for p in (design.get("points") or [])[:20]
    ]
    lines += _table(header.split("|"), rows) if rows else []
    lines += ["", *(f"![{q}]({q})" for q in design.get("quicklooks") or ())]
    return lines + [f"- {n}" for n in design.get("notes") or ()] + [""]


def _accumulation_section(acc: Mapping[str, Any] | None) -> list[str]:
    """The accumulation projection: share of the map above S now and later, C*."""
    if not acc or not acc.get("metals"):
        return []
    lines = [
        "## Accumulation projection",
        "",
        f"{acc.get('method', '')}; {acc.get('years')} years, plough layer "
        f"{_fmt(acc.get('soil_mass_kg_m2'))} kg/m2. Share of the mapped area above the "
        "screening value S in a year, and that has reached it by then "
        "(`<M>_years_to_exceed.tif`); C*: the steady state.",
        "",
    ]
    for metal, m in acc["metals"].items():
        above, reached = m.get("share_above") or {}, m.get("share_reached") or {}
        keys = list(dict.fromkeys([*above, *reached]))
        st = m.get("steady_state_mg_kg") or {}
        lines += [
            f"**{metal}** (S: {_fmt(m.get('screening_mg_kg'))} mg/kg; C* mean "
            f"{_fmt(st.get('mean'))}, max {_fmt(st.get('max'))} mg/kg)",
            "",
            *_table(
                ["", *[k.replace("_", " ") for k in keys]],
                [
                    ["above S", *[_pct(above.get(k)) for k in keys]],
                    ["reached S", *[_pct(reached.get(k)) for k in keys]],
                ],
            ),
            "",
        ]
    lines += [f"- {n}" for n in acc.get("notes") or ()]
    return lines + [""]
