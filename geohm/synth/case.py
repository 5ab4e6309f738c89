"""The demo case's fixed facts: where it lies, its two Landsat products, its land-cover classes.

Shared by the simulation (:mod:`geohm.synth.world`), the files written
(:mod:`geohm.synth.demo`) and the scene job (:mod:`geohm.synth.config_text`).
"""

from __future__ import annotations

__all__ = [
    "CRS",
    "LANDCOVER_CLASSES",
    "LANDCOVER_COLORS",
    "NODATA",
    "SOURCE_PRODUCT_ID",
    "TARGET_PRODUCT_ID",
    "X0",
    "Y0",
]

#: CRS of every demo raster (WGS 84 / UTM zone 49N, like Daxigou).
CRS = "EPSG:32649"
#: Lower-left corner of the scene (metres, EPSG:32649).
X0, Y0 = 490000.0, 3750000.0
SOURCE_PRODUCT_ID = "LC08_L2SP_127036_20171208_20200802_02_T1"
TARGET_PRODUCT_ID = "LC08_L2SP_127036_20191115_20200825_02_T1"
#: Land-cover class codes of ``truth/landcover.tif`` (0 = nodata).
LANDCOVER_CLASSES: dict[int, str] = {
    1: "forest",
    2: "shrub_grass",
    3: "cropland",
    4: "bare_soil",
    5: "water",
    6: "road",
    7: "open_pit",
    8: "slag_heap",
    9: "new_slag_heap",
}
#: RGBA colour of each land-cover class in ``truth/landcover.tif`` (0 = nodata).
LANDCOVER_COLORS = {
    0: (0, 0, 0, 0),
    1: (34, 110, 50, 255),
    2: (150, 190, 90, 255),
    3: (235, 210, 120, 255),
    4: (190, 150, 110, 255),
    5: (60, 120, 220, 255),
    6: (90, 90, 90, 255),
    7: (200, 60, 40, 255),
    8: (110, 40, 110, 255),
    9: (230, 60, 200, 255),
}
#: Land-cover class codes by name (the keys of :data:`LANDCOVER_CLASSES`).
FOREST, SHRUB, CROP, BARE, WATER, ROAD, PIT, SLAG, NEWSLAG = range(1, 10)
#: Collection 2 Level-2 scale factors: reflectance = DN * SR_MULT + SR_ADD, kelvin likewise.
SR_MULT, SR_ADD = 2.75e-05, -0.2
ST_MULT, ST_ADD = 0.00341802, 149.0
#: Nodata of the float32 demo rasters.
NODATA = -9999.0
