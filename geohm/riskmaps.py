"""Risk layers derived window by window from the predicted concentration maps.

:func:`plan_risk` turns the ``risk:`` block of a scene config into a :class:`RiskPlan`:
which layers are written (float index maps and uint8 class maps), their gradings, and
two functions that :func:`geohm.predict.predict_map` calls on every window:
``exceedance_thresholds`` gives the screening value of every pixel per metal (from the
pH and land-use layers of the window), which the prediction step hands to the model
with the window's features, and ``derive`` computes the risk layers from the predicted
concentrations and the models' exceedance probabilities. It is pure NumPy on arrays and
standards, and never sees an estimator; the pipeline opens the pH raster (if any) as
one more cube layer and writes the layers.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geohm.config import RiskSpec
from geohm.errors import ConfigError
from geohm.risk import (
    CLASS_NODATA,
    HAKANSON_RI,
    IGEO,
    NEMEROW,
    SINGLE_FACTOR,
    Grading,
    Standard,
    background,
    get_grading,
    hakanson_er,
    hakanson_ri,
    igeo,
    load_standard,
    nemerow,
    single_factor,
    toxic_response,
)

__all__ = [
    "LAND_USE_LAYER",
    "OUTSIDE_AOA",
    "PH_LAYER",
    "RiskLayer",
    "RiskPlan",
    "plan_risk",
    "probability_class_plan",
]

#: Class code of a pixel outside the area of applicability (``risk.outside_aoa: class``).
OUTSIDE_AOA = 254
#: Name of the pH layer appended to the prediction cube when ``risk.ph`` is a raster.
PH_LAYER = "_ph"
#: Name of the land-use layer appended when ``risk.land_use`` is a raster.
LAND_USE_LAYER = "_land_use"


@dataclass(frozen=True)
class RiskLayer:
    """One output layer: a float index map or a uint8 class map."""

    name: str
    description: str
    grading: Grading | None = None  # None: a float index map
    units: str = "1"


@dataclass
class RiskPlan:
    """What risk layers to write and how to compute them per window."""

    layers: list[RiskLayer]
    screening: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _spec: RiskSpec | None = None
    _standard: Standard | None = None
    _targets: list[str] = field(default_factory=list)
    _background: dict[str, float] = field(default_factory=dict)
    _tr: dict[str, float] = field(default_factory=dict)
    #: Targets with an exceedance map (their models give P(C > S)).
    _exceedance: list[str] = field(default_factory=list)

    @property
    def exceedance_targets(self) -> list[str]:
        """The targets with an exceedance map (their models give P(C > S))."""
        return list(self._exceedance)

    def exceedance_thresholds(self, block: np.ndarray, features: list[str]) -> dict[str, Any]:
        """The screening value S of every pixel of one window, per target.

        For the targets with an exceedance map: the values whose P(C > S) the models give
        with their prediction.

        Parameters
        ----------
        block : numpy.ndarray
            The window's (feature, y, x) layers (the pH and land-use layers among them
            when they are rasters).
        features : list of str
            The layer names of ``block``.

        Returns
        -------
        dict of str to float or numpy.ndarray
            Target -> S in mg/kg: a number, or a (y, x) array with NaN where the land
            use has no value.
        """
        if not self._exceedance:
            return {}
        ph = self._ph(block, features)
        return {t: self._screening(t, ph, block, features) for t in self._exceedance}

    def _ph(self, block: np.ndarray, features: list[str]) -> Any:
        spec = self._spec
        assert spec is not None
        return spec.ph if isinstance(spec.ph, float) else block[features.index(PH_LAYER)]

    def derive(
        self, preds: dict[str, np.ndarray], block: np.ndarray, features: list[str]
    ) -> dict[str, np.ndarray]:
        """Risk layers of one window from the predicted layers.

        Parameters
        ----------
        preds : dict of str to numpy.ndarray
            The window's predicted layers: ``<target>`` the concentration (mg/kg) and,
            for the targets with an exceedance map, ``<target>_exceedance`` the
            probability that it exceeds the screening value (from
            :meth:`exceedance_thresholds`).
        block, features : numpy.ndarray, list of str
            The window's layers and their names (pH and land-use rasters).

        Returns
        -------
        dict of str to numpy.ndarray
            Layer name -> (y, x) float32 index or uint8 class map.
        """
        ph = self._ph(block, features)
        out: dict[str, np.ndarray] = {}
        grade = {layer.name: layer.grading for layer in self.layers}
        p_list = []
        for t in self._targets:
            if self._standard is None or t not in self.screening:
                continue
            s = self._screening(t, ph, block, features)
            pi = single_factor(preds[t].astype("float64"), s, metal=t)
            p_list.append(pi)
            if f"{t}_risk" in grade:
                out[f"{t}_risk"] = _classify(grade[f"{t}_risk"], pi)
            if t in self._exceedance:
                prob = preds[f"{t}_exceedance"]
                out[f"{t}_exceedance_class"] = _classify(grade[f"{t}_exceedance_class"], prob)
        if "nemerow" in grade:
            pn = nemerow(p_list)
            out["nemerow"] = pn.astype("float32")
            out["nemerow_class"] = _classify(grade["nemerow_class"], pn)
        if f"{self._targets[0]}_igeo" in grade:
            for t in self._targets:
                ig = igeo(preds[t].astype("float64"), self._background[t], metal=t)
                out[f"{t}_igeo"] = ig.astype("float32")
                out[f"{t}_igeo_class"] = _classify(grade[f"{t}_igeo_class"], ig)
        if "hakanson_ri" in grade:
            ers = [
                hakanson_er(preds[t], self._background[t], self._tr[t], metal=t)
                for t in self._targets
            ]
            ri = hakanson_ri(ers)
            out["hakanson_ri"] = ri.astype("float32")
            out["hakanson_ri_class"] = _classify(grade["hakanson_ri_class"], ri)
        self._mark_outside(out, preds)
        return out

    def layer_classes(self, layer: RiskLayer, applicability: bool) -> list[tuple[int, str, str]]:
        """``(code, label, colour)`` of a class layer, with the outside-AOA class when used.

        Parameters
        ----------
        layer : RiskLayer
            A layer of this plan with a grading.
        applicability : bool
            Whether the models give an area of applicability (``<target>_aoa``).

        Returns
        -------
        list of tuple
            The grading's classes, then :data:`OUTSIDE_AOA` with ``risk.outside_aoa:
            class``.
        """
        assert layer.grading is not None and self._spec is not None
        classes = layer.grading.classes()
        if applicability and self._spec.outside_aoa == "class":
            classes.append((OUTSIDE_AOA, "outside the area of applicability", "#bdbdbd"))
        return classes

    def _mark_outside(self, out: dict[str, np.ndarray], preds: dict[str, np.ndarray]) -> None:
        """Pixels outside a model's area of applicability in the class layers.

        ``risk.outside_aoa``: ``class`` gives them :data:`OUTSIDE_AOA`, ``mask`` makes
        them nodata, ``ignore`` leaves them classed. A layer of one metal follows that
        metal's model; a layer of several (Nemerow, RI) is outside where any of them is.
        """
        mode = self._spec.outside_aoa if self._spec is not None else "ignore"
        if mode == "ignore":
            return
        code = OUTSIDE_AOA if mode == "class" else CLASS_NODATA
        for name, arr in out.items():
            if arr.dtype != np.uint8:
                continue
            own = [t for t in self._targets if name.startswith(f"{t}_")] or self._targets
            masks = [preds[f"{t}_aoa"] == 0 for t in own if f"{t}_aoa" in preds]
            if masks:
                arr[np.logical_or.reduce(masks) & (arr != CLASS_NODATA)] = code

    def _screening(self, metal: str, ph: Any, block: np.ndarray, features: list[str]) -> Any:
        """Screening value(s) of ``metal``: scalar, or per pixel with pH / land-use rasters."""
        spec = self._spec
        assert spec is not None and self._standard is not None
        if isinstance(spec.land_use, str):
            return self._standard.screening(metal, ph=ph, land_use=spec.land_use)
        codes = block[features.index(LAND_USE_LAYER)]
        out = np.full(codes.shape, np.nan)
        for code, name in spec.land_use.classes.items():
            m = codes == code
            if m.any():
                local_ph = ph if np.isscalar(ph) else np.asarray(ph)[m]
                out[m] = self._standard.screening(metal, ph=local_ph, land_use=name)
        return out  # pixels of unlisted land-use codes: NaN (no class)


def _classify(grading: Grading | None, values: np.ndarray) -> np.ndarray:
    assert grading is not None
    return grading.classify(values)


def plan_risk(
    spec: RiskSpec,
    targets: Sequence[str],
    exceedance: Collection[str] | None = None,
) -> RiskPlan:
    """Decide the risk layers for ``targets`` under ``spec``.

    Single-factor classes (``<metal>_risk``) for every target the standard covers; the
    Nemerow index and classes when two or more do; Igeo and Hakanson maps (``igeo``,
    ``hakanson`` in ``risk.indices``) from background values; with ``exceedance``, the
    probability that the concentration exceeds the screening value (given by the
    model with the concentration, from its ensemble members: the trees of a random
    forest) and a "likely exceeds" class at ``risk.likely_probability``.

    Parameters
    ----------
    spec : RiskSpec
        The config's ``risk:`` block.
    targets : sequence of str
        The mapped metals.
    exceedance : collection of str, optional
        The targets whose fitted models give exceedance probabilities. None: not known
        yet (the config is checked before training); every target gets the layers.

    Returns
    -------
    RiskPlan
        The layers and the per-window functions.

    Raises
    ------
    ConfigError
        Unknown standard, grading, background region or metal.
    """
    std = load_standard(spec.user_standard) if spec.user_standard else load_standard(spec.standard)
    targets = list(targets)
    covered = {m.lower() for m in std.metals()}
    plan = RiskPlan(layers=[], _spec=spec, _standard=std, _targets=targets)

    def grading(key: str, default: Grading) -> Grading:
        return get_grading(spec.grading[key]) if key in spec.grading else default

    probe_ph = 6.8 if not isinstance(spec.ph, float) else spec.ph
    uses = (
        [spec.land_use] if isinstance(spec.land_use, str) else list(spec.land_use.classes.values())
    )
    constant = isinstance(spec.ph, float) and isinstance(spec.land_use, str)
    for t in targets:
        if t.lower() not in covered:
            plan.notes.append(f"{t}: no value in standard '{std.name}', no risk class map")
            continue
        for use in uses:  # fails early, naming an unknown land use or metal
            value = std.screening(t, ph=probe_ph, land_use=use)
        plan.screening[t] = float(value) if constant else None
        if "single_factor" in spec.indices:
            plan.layers.append(
                RiskLayer(
                    f"{t}_risk",
                    f"{t} single-factor pollution class (Pi = C / S)",
                    grading("single_factor", SINGLE_FACTOR),
                )
            )
        if "exceedance" in spec.indices:
            if exceedance is not None and t not in exceedance:
                plan.notes.append(
                    f"{t}: the model gives no predictive distribution, so no exceedance map "
                    "(use model rf)"
                )
                continue
            if exceedance is not None:
                plan._exceedance.append(t)
            p = spec.likely_probability
            plan.layers.append(
                RiskLayer(f"{t}_exceedance", f"{t} probability of exceeding the screening value")
            )
            plan.layers.append(
                RiskLayer(
                    f"{t}_exceedance_class",
                    f"{t} likely exceeds the screening value",
                    Grading(
                        f"{t}_exceedance",
                        breaks=(p,),
                        right=False,
                        labels=(f"unlikely (P < {p:g})", f"likely exceeds (P >= {p:g})"),
                        colors=("#1a9850", "#d73027"),
                    ),
                )
            )
    if "nemerow" in spec.indices:
        if len(plan.screening) >= 2:
            plan.layers.append(RiskLayer("nemerow", "Nemerow integrated pollution index P_N"))
            plan.layers.append(
                RiskLayer("nemerow_class", "Nemerow pollution class", grading("nemerow", NEMEROW))
            )
        else:
            plan.notes.append("Nemerow index needs two or more metals with standard values")
    if "igeo" in spec.indices or "hakanson" in spec.indices:
        plan._background = {t: background(t, spec.background) for t in targets}
    if "igeo" in spec.indices:
        for t in targets:
            plan.layers.append(RiskLayer(f"{t}_igeo", f"{t} geo-accumulation index Igeo"))
            plan.layers.append(
                RiskLayer(f"{t}_igeo_class", f"{t} Igeo class (Muller)", grading("igeo", IGEO))
            )
    if "hakanson" in spec.indices:
        plan._tr = {t: toxic_response(t, spec.toxic_response or None) for t in targets}
        plan.layers.append(RiskLayer("hakanson_ri", "Hakanson potential ecological risk RI"))
        plan.layers.append(
            RiskLayer("hakanson_ri_class", "Hakanson RI class", grading("hakanson_ri", HAKANSON_RI))
        )
    if not plan.layers:
        raise ConfigError(
            "key 'risk': no risk layer can be made for "
            f"{', '.join(targets)} with standard '{std.name}'"
        )
    return plan


@dataclass
class ProbabilityClassPlan:
    """One class layer from a probability layer: 'likely' at or above ``probability``."""

    source: str
    layers: list[RiskLayer]

    def derive(
        self, preds: dict[str, np.ndarray], block: np.ndarray, features: list[str]
    ) -> dict[str, np.ndarray]:
        """The class layer of one window."""
        layer = self.layers[0]
        assert layer.grading is not None
        return {layer.name: layer.grading.classify(preds[self.source])}


def probability_class_plan(
    source: str, name: str, description: str, probability: float
) -> ProbabilityClassPlan:
    """Classes 1 (P < probability) and 2 (P >= probability) of the ``source`` layer."""
    grading = Grading(
        name,
        breaks=(probability,),
        right=False,
        labels=(f"not contaminated (P < {probability:g})", f"contaminated (P >= {probability:g})"),
        colors=("#1a9850", "#d73027"),
    )
    return ProbabilityClassPlan(source, [RiskLayer(name, description, grading)])
