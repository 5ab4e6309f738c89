"""The built-in synthetic demo: a two-year mining-area case shaped like Daxigou.

:func:`make_demo` writes, for a made-up mountain mining area in UTM zone 49N
(EPSG:32649, 30 m pixels, default 400 x 400 = 12 x 12 km):

* ``dem.tif``: float32 metres (about 900-1950 m): three main ridges (SW-NE) with valleys
  between them, fractal gullies and an open pit carved into an upper slope.
* ``source/<product_id>/`` (2017-12-08) and ``target/<product_id>/`` (2019-11-15):
  Landsat 8 Collection 2 Level-2 folders as USGS ships them (uint16 SR_B1..B7 with
  the real scale 2.75e-05/-0.2, ST_B10 with 0.00341802/149.0, QA_PIXEL, MTL).
* ``samples_source.gpkg`` (44 points, ids ``S17-01``...) and ``samples_target.gpkg``
  (43 points, ``S19-01``...), EPSG:4326, columns ``id``, ``Cu``, ``Pb`` (mg/kg:
  the truth at the pixel times 5 % log-normal lab noise). Points lie mostly on
  ridges, hillsides and near valleys around the mine, as in the paper. In the
  target year exactly one point lies under a cloud and one lies 300-400 m east of
  the scene, so a run drops and reports two of them (their ids are in
  ``truth/demo.json`` and :attr:`DemoPaths.unusable_target_ids`); the other 41
  are usable. Every source-year point is usable.
* ``covariates/dist_source.tif``: float32 distance (m) to the nearest mining
  source known at the target date (pit, old and new slag heaps), on a *different*
  grid (60 m, origin offset by a non-multiple of 30 m) with a nodata (-9999) rim
  outside the scene, so the pipeline's alignment is exercised.
* ``truth/``: ``source_Cu.tif``, ``source_Pb.tif``, ``target_Cu.tif``,
  ``target_Pb.tif`` (float32 mg/kg), ``landcover.tif`` (target year) and
  ``landcover_source.tif`` (uint8, classes in :data:`LANDCOVER_CLASSES`), and
  ``demo.json`` (seed, size, class table, unusable point ids).
* ``scene.yaml``: the target-year scene job (:func:`demo_config_text`).

How the truth is made (all hidden from the pipeline): Cu and Pb are a background
(about 21 mg/kg, varying with elevation, land cover, a geogenically enriched
ore-bearing ridge and a smooth Gaussian random field) plus contamination that
decays exponentially with distance from the pit, slag heaps and roads, further
downslope than upslope, multiplied by an accumulation factor in valley bottoms and
by a second random field. The random
fields are invisible in the imagery except through weak soil-spectrum effects,
so the covariates carry real but imperfect signal. Reflectance mixes vegetation,
dry vegetation and soil by land cover; contaminated soil is darker in NIR/SWIR1
with a changed SWIR1/SWIR2 ratio, vegetation near sources is stressed (lower
NDVI); terrain illumination uses the scene's sun angles. The target year has a
sensor/atmosphere gain and offset per band, different vegetation, more mining
(contamination x1.1) and a new slag heap. Contamination saturates softly (Cu near
110 mg/kg, Pb near 38 mg/kg above background), so maps span about 10-170 mg/kg Cu
and 10-80 mg/kg Pb.

Calibration (checked when the generator was written, seeds 0-4, sizes 128-400): a
random forest on about 33 of the 41 usable target samples, with the 7 bands,
thermal, NDVI/EVI/DVI/CMR/MNDWI, tasseled cap, elevation/slope/aspect and
``dist_source`` as features, predicts the target truth map with R2 of about
0.4-0.7; with thousands of training pixels it reaches about 0.85-0.9 (the rest is
the unobservable random fields). A linear model on raw bands and thermal trained
on the source year fails on the target year (sensor shift), which is what the
transfer models are for.

Everything derives from ``numpy.random.default_rng(seed)``: the same seed gives
byte-identical arrays. Geometry is defined relative to the scene size, so a
160-pixel scene is a smaller copy of the 400-pixel one.

Modules: :mod:`~geohm.synth.case` (the case's fixed facts), :mod:`~geohm.synth.fields`
(random fields and shapes), :mod:`~geohm.synth.truth` (terrain, layout, land cover,
metals), :mod:`~geohm.synth.imagery` (the Landsat scenes), :mod:`~geohm.synth.samples`
(sample sites and lab values), :mod:`~geohm.synth.world` (:func:`simulate`),
:mod:`~geohm.synth.config_text` (:func:`demo_config_text`) and
:mod:`~geohm.synth.demo` (:func:`make_demo`, the files).
"""

from __future__ import annotations

from geohm.synth.case import (
    CRS,
    LANDCOVER_CLASSES,
    SOURCE_PRODUCT_ID,
    TARGET_PRODUCT_ID,
)
from geohm.synth.config_text import demo_config_text
from geohm.synth.demo import DemoPaths, make_demo
from geohm.synth.world import simulate

__all__ = [
    "CRS",
    "LANDCOVER_CLASSES",
    "SOURCE_PRODUCT_ID",
    "TARGET_PRODUCT_ID",
    "DemoPaths",
    "demo_config_text",
    "make_demo",
    "simulate",
]
