"""Landsat 8/9 Collection 2 scenes: MTL metadata, band files, QA_PIXEL masks.

Reading is lazy: every band is opened with rioxarray as a dask array, scaled with
the factors found in the scene's own ``_MTL.txt`` (never hard-coded) and stacked
into one float32 ``(band, y, x)`` DataArray whose band coordinate uses the words
of :data:`BAND_NAMES` (``"red"``, ``"nir"``), not ``B4``/``B5``.

Level-2 (``L2SP``/``L2SR``) scenes give surface reflectance (0-1) and, for L2SP,
surface temperature in kelvin. Level-1 (``L1TP``/``L1GT``/``L1GS``) scenes give
top-of-atmosphere reflectance corrected for the sun elevation and the band-10
brightness temperature in kelvin. Collection 1 scenes (a different QA bit layout)
are refused.

One concept per module:

- :mod:`~geohm.io.landsat.mtl`: band names, processing levels, reading the ``_MTL.txt``;
- :mod:`~geohm.io.landsat.qa`: the QA_PIXEL bits, masks and reasons;
- :mod:`~geohm.io.landsat.reader`: :func:`open_landsat` and :func:`open_band_files`;
- :mod:`~geohm.io.landsat.stac`: the same stack from a STAC item (:func:`find_stac_item`,
  :func:`search_stac_api`, :func:`open_stac_landsat`, :func:`open_stac_qa`), its COGs
  read over HTTP window by window;
- :mod:`~geohm.io.landsat.writer`: :func:`write_landsat_c2l2`, which lays out a
  Collection 2 Level-2 folder the way USGS ships it (the synthetic demo,
  :mod:`geohm.synth`, uses it; the reader does not).
"""

from __future__ import annotations

from geohm.io.landsat.mtl import (
    BAND_NAMES,
    K_GROUP,
    L1_GROUP,
    L1_LEVELS,
    L2_LEVELS,
    REFLECTIVE_BANDS,
    SR_GROUP,
    ST_GROUP,
    find_mtl,
    read_mtl,
)
from geohm.io.landsat.qa import DEFAULT_MASK, QA_BITS, open_qa, qa_mask, qa_reasons
from geohm.io.landsat.reader import open_band_files, open_landsat
from geohm.io.landsat.stac import (
    STAC_ASSETS,
    ItemFilter,
    find_stac_item,
    least_cloudy,
    open_stac_landsat,
    open_stac_qa,
    search_stac_api,
)
from geohm.io.landsat.writer import write_landsat_c2l2

__all__ = [
    "BAND_NAMES",
    "DEFAULT_MASK",
    "ItemFilter",
    "K_GROUP",
    "L1_GROUP",
    "L1_LEVELS",
    "L2_LEVELS",
    "QA_BITS",
    "REFLECTIVE_BANDS",
    "SR_GROUP",
    "STAC_ASSETS",
    "ST_GROUP",
    "find_mtl",
    "find_stac_item",
    "least_cloudy",
    "open_band_files",
    "open_landsat",
    "open_qa",
    "open_stac_landsat",
    "open_stac_qa",
    "qa_mask",
    "qa_reasons",
    "read_mtl",
    "search_stac_api",
    "write_landsat_c2l2",
]
