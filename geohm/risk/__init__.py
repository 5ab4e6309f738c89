"""Soil-risk indices, their class tables (gradings) and the standards they compare against.

Arrays in, arrays out: the risk layers of a map (:mod:`geohm.riskmaps`) see concentrations
(mg/kg) and standards only, never a file, a raster or an estimator. One concept per module:

- :mod:`~geohm.risk.indices`: single factor, Nemerow, I_geo, Hakanson E_r and RI (the
  formulas are in its docstring);
- :mod:`~geohm.risk.gradings`: class tables on an index (:class:`Grading`) and the built-in
  ones;
- :mod:`~geohm.risk.standards`: soil quality standards (:class:`Standard`,
  :func:`load_standard`, the built-in tables);
- :mod:`~geohm.risk.references`: background values and toxic-response factors.

Reading the tables (package data or a user's CSV/YAML) is done by
:mod:`geohm.io.standard_tables`. Every name below stays importable from ``geohm.risk``.
"""

from __future__ import annotations

from geohm.risk.gradings import (
    CLASS_NODATA,
    GRADINGS,
    HAKANSON_ER,
    HAKANSON_RI,
    IGEO,
    NEMEROW,
    SINGLE_FACTOR,
    Grading,
    get_grading,
)
from geohm.risk.indices import FloatArray, hakanson_er, hakanson_ri, igeo, nemerow, single_factor
from geohm.risk.references import background, toxic_response
from geohm.risk.standards import (
    BUILTIN_STANDARDS,
    GB15618_PH_BREAKS,
    Standard,
    StandardRow,
    load_standard,
)

__all__ = [
    "BUILTIN_STANDARDS",
    "CLASS_NODATA",
    "GB15618_PH_BREAKS",
    "GRADINGS",
    "HAKANSON_ER",
    "HAKANSON_RI",
    "IGEO",
    "NEMEROW",
    "SINGLE_FACTOR",
    "FloatArray",
    "Grading",
    "Standard",
    "StandardRow",
    "background",
    "get_grading",
    "hakanson_er",
    "hakanson_ri",
    "igeo",
    "load_standard",
    "nemerow",
    "single_factor",
    "toxic_response",
]
