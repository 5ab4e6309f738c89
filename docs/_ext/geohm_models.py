"""Sphinx extension: the model pages, generated from geohm's model registry.

- ``geohm-model NAME`` renders one registry entry (``geohm.models.registry.MODELS``):
  its summary, what it takes and gives (inputs, uncertainty map, source year,
  screening, regression-kriging base) and its ``model.params`` with their defaults,
  read from the estimator the registry builds, so the table follows the code.
- ``geohm-model-table`` lists every entry with a link to its page.
- Every registry entry must be rendered on some page: a model added to the registry
  without a docs page is a build warning (an error under ``sphinx-build -W``).
"""

from __future__ import annotations

import inspect
import re
import warnings
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from geohm_config_ref import yaml_value
from geohm_tables import Cell, always_reread, literal, plain, table
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

_INPUTS = {
    "features": "every feature of the cube (bands, indices, terrain, covariates)",
    "coordinates": "only the pixel-centre coordinates x, y (metres, a projected CRS)",
    "spectra": "only the hyperspectral bands wl_* (spectral preprocessing, no scaling)",
    "patches": "the (2h+1) x (2h+1) patch of every feature around each pixel (no scaling, "
    "imputation or screening; maps a window with an h-pixel halo in one pass)",
}
_DISTRIBUTION = {
    "quantiles": "quantile regression forest (the fitted trees' leaves), conformally "
    "calibrated; P(C > S) from the trees' votes",
    "std": "the kriging standard deviation (Gaussian interval)",
    "residuals": "conformal interval from out-of-fold residuals",
    "classes": "class probabilities (contamination_probability.tif)",
}


def label(name: str) -> str:
    """The cross-reference label of a model's block (``model-rf``, ``model-ga-bp``)."""
    return f"model-{name}"


_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z])")


def _first_sentence(lines: list[str]) -> str:
    text = plain(" ".join(" ".join(lines).split()))
    m = _SENTENCE_END.search(text)
    return text if m is None else text[: m.start() + 1]


def _param_docs(cls: type) -> dict[str, str]:
    """Parameter name -> first sentence of its numpydoc description."""
    from numpydoc.docscrape import NumpyDocString

    out: dict[str, str] = {}
    with warnings.catch_warnings():  # only Parameters is read: other sections may be any
        warnings.simplefilter("ignore", UserWarning)
        doc = NumpyDocString(inspect.getdoc(cls) or "")
    for p in doc["Parameters"]:
        for name in p.name.split(","):
            out[name.strip()] = _first_sentence(p.desc)
    return out


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _capabilities(entry: Any) -> nodes.field_list:
    items: list[tuple[str, Cell]] = [
        ("model.name", [literal(entry.name)]),
        ("what", entry.summary),
        ("inputs", _INPUTS[entry.inputs]),
        ("uncertainty map", _DISTRIBUTION[entry.distribution]),
        ("needs a source: year", _yes(entry.needs_source)),
        ("factor screening applies", _yes(entry.screening)),
        ("may be the trend of rk", _yes(entry.rk_base)),
    ]
    if entry.source_model:
        items.append(("source-year net", [literal(entry.source_model)]))
    fields = nodes.field_list()
    for name, value in items:
        f = nodes.field()
        f += nodes.field_name(text=name)
        body = nodes.field_body()
        if isinstance(value, str):
            body += nodes.paragraph(text=value)
        else:
            body += nodes.paragraph("", "", *value)
        f += body
        fields += f
    return fields


def _auto_rows() -> tuple[list[nodes.Node], list[list[Cell]]]:
    from geohm.models.registry import auto_settings

    s = auto_settings(None)
    rows: list[list[Cell]] = [
        [
            [literal("candidates")],
            [literal(yaml_value([c.name for c, _ in s.candidates]))],
            "names, or {name: {its params}}",
        ],
        [
            [literal("max_minutes")],
            [literal(yaml_value(s.max_minutes))],
            "time for scoring candidates, per target (minutes)",
        ],
        [
            [literal("stack")],
            [literal(yaml_value(s.stack))],
            "allow a stacked ensemble when it scores better",
        ],
    ]
    cand = table(
        ["candidate", "fitted as", "what"],
        [[[literal(c.name)], [literal(c.model)], c.summary] for c, _ in s.candidates],
        widths=[15, 15, 70],
    )
    return [nodes.paragraph(text="Candidates, in the order they are scored:"), cand], rows


def _params(entry: Any, exclude: set[str]) -> tuple[list[nodes.Node], list[list[Cell]], list[str]]:
    """Extra nodes (before the table), the table's rows and its headers."""
    headers = ["parameter", "default", "meaning"]
    if entry.selects:
        return (*_auto_rows(), headers)
    est = entry.build({}, 0)
    cls = type(est)
    if hasattr(est, "param_grid"):  # a classifier: grid search, no model.params
        grid: dict[str, list[Any]] = est.param_grid
        model = est.estimator.steps[-1][1]
        keys = [k.split("__", 1)[1] for k in grid]  # "model__C" -> "C"
        while keys and all(k.startswith("estimator__") for k in keys):
            model = model.estimator  # e.g. the SVC inside CalibratedClassifierCV
            keys = [k.split("__", 1)[1] for k in keys]
        values = list(grid.values())
        rows: list[list[Cell]] = [
            [[literal(k)], [literal(yaml_value(v))]] for k, v in zip(keys, values, strict=True)
        ]
        note = nodes.paragraph(
            text="Takes no model.params: each fit grid-searches these parameters of "
            f"{type(model).__name__} (GridSearchCV on the macro F1 score, stratified folds):"
        )
        return [note], rows, ["parameter", "values searched"]
    params = est.get_params(deep=False)
    skip = {"random_state"} | exclude
    if cls.__module__.startswith("sklearn"):
        base = cls().get_params(deep=False)
        docs = _param_docs(cls)
        keys = [k for k, v in params.items() if k not in skip and base.get(k) != v]
        note = nodes.paragraph(
            text=f"The estimator is scikit-learn's {cls.__name__}; every one of its "
            "parameters is a model.params key. geohm sets these defaults (the others are "
            "scikit-learn's):"
        )
        return (
            [note],
            [[[literal(k)], [literal(yaml_value(params[k]))], docs.get(k, "")] for k in keys],
            headers,
        )
    docs = _param_docs(cls)
    note = nodes.paragraph(
        text=f"The estimator is geohm's {cls.__name__} (see the Python API); its "
        "parameters are the model.params keys:"
    )
    rows = [
        [[literal(k)], [literal(yaml_value(v))], docs.get(k, "")]
        for k, v in params.items()
        if k not in skip
    ]
    return [note], rows, headers


class ModelDirective(SphinxDirective):
    """``geohm-model NAME``: one registry entry, its capabilities and parameters."""

    required_arguments = 1
    has_content = False
    option_spec = {"exclude": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        """The entry's capabilities and its parameter table, after a link target."""
        from geohm.models.registry import MODELS

        name = self.arguments[0]
        if name not in MODELS:
            raise self.error(f"geohm-model: '{name}' is not in the model registry")
        always_reread(self.env, self.env.docname)
        models = _documented(self.env)
        if name in models and models[name] != self.env.docname:
            logger.warning(
                "model '%s' is documented twice (also in %s)",
                name,
                models[name],
                location=self.get_location(),
            )
        models[name] = self.env.docname

        entry = MODELS[name]
        target = nodes.target("", "", ids=[label(name)], names=[label(name)])
        self.state.document.note_explicit_target(target)
        box = nodes.container(classes=["geohm-model"])
        box += _capabilities(entry)
        exclude = {s.strip() for s in self.options.get("exclude", "").split(",") if s.strip()}
        extra, rows, headers = _params(entry, exclude)
        box.extend(extra)
        if rows:
            widths = [20, 25, 55] if len(headers) == 3 else [30, 70]
            box += table(headers, rows, widths=widths)
        return [target, box]


class ModelTable(SphinxDirective):
    """``geohm-model-table``: every registry entry, linked to its page."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """A row per registry entry."""
        from geohm.models.registry import MODELS

        always_reread(self.env, self.env.docname)
        rows: list[list[Cell]] = []
        for name, entry in MODELS.items():
            ref = addnodes.pending_xref(
                "",
                literal(name),
                refdomain="std",
                reftype="ref",
                reftarget=label(name),
                refexplicit=True,
                refwarn=True,
                refdoc=self.env.docname,
            )
            rows.append([[ref], entry.summary, entry.inputs, entry.distribution])
        return [
            table(
                ["model.name", "what", "inputs", "uncertainty from"], rows, widths=[15, 55, 12, 18]
            )
        ]


def _documented(env: BuildEnvironment) -> dict[str, str]:
    if not hasattr(env, "geohm_models"):
        env.geohm_models = {}  # type: ignore[attr-defined]
    return env.geohm_models  # type: ignore[attr-defined]


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    models = _documented(env)
    for name in [n for n, d in models.items() if d == docname]:
        del models[name]


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: Any) -> None:
    _documented(env).update(
        {n: d for n, d in getattr(other, "geohm_models", {}).items() if d in docnames}
    )


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn about every registry entry that no page renders."""
    from geohm.models.registry import MODELS

    missing = sorted(set(MODELS) - set(_documented(env)))
    for name in missing:
        logger.warning(
            "model registry entry '%s' has no docs page: add a geohm-model directive for "
            "it to a page under docs/models/",
            name,
        )


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the model directives and the registry coverage check."""
    app.setup_extension("geohm_tables")
    app.add_directive("geohm-model", ModelDirective)
    app.add_directive("geohm-model-table", ModelTable)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
