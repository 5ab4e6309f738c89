"""The feature cube: reflectance, indices, terrain and covariates on one grid.

``cube.py`` decides *what* goes on the reference (Landsat) grid and how each layer
is resampled; the warping itself is done in fixed tiles by
:class:`geohm.io.reading.AlignedRaster`, so a whole scene is never loaded here.
:class:`WindowSource` computes the features of any window; the lazy (feature, y, x)
float32 cube of :func:`stack_features` is that source read chunk by chunk.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

import dask.array
import numpy as np
import xarray as xr

from geohm.errors import ConfigError, GridError, InputError
from geohm.indices import INDEX_BANDS, INDEX_NAMES, index_array
from geohm.io.reading import TILE, read_block, window_index
from geohm.terrain import TerrainWindows

__all__ = [
    "COORDINATE_FEATURES",
    "REFLECTANCE_FEATURES",
    "TERRAIN_FEATURES",
    "WAVELENGTH_PREFIX",
    "WindowReader",
    "WindowSource",
    "available_features",
    "band_wavelengths",
    "resolve_features",
    "spectral_columns",
    "stack_features",
    "valid_mask",
    "wavelength_feature",
]

#: Reflectance bands used as features by ``features: auto`` (coastal is left out:
#: it is mostly aerosol signal).
REFLECTANCE_FEATURES: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2", "thermal")
TERRAIN_FEATURES: tuple[str, ...] = ("elevation", "slope", "aspect")
#: Pixel-centre map coordinates (CRS units). Never part of ``features: auto``: they are
#: asked for by name, by the kriging models or by ``spatial_features.coordinates``.
COORDINATE_FEATURES: tuple[str, ...] = ("x", "y")

#: ``features:`` value asking for every available feature (not a model name).
ALL_FEATURES = "auto"

#: Name prefix of the hyperspectral band features: ``wl_450.0`` is the band at 450 (in
#: the unit of ``hyperspectral.unit``).
WAVELENGTH_PREFIX = "wl_"

_UNITS = {"nm": 1.0, "um": 1000.0}  # length units, in nm
_WITH_UNIT = re.compile(
    r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*"
    r"(nm|nanometers?|um|µm|μm|micrometers?|microns?|cm-1|cm\^-1|1/cm)(?![a-z])",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\s*[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?\s*")


def _unit_of(text: str) -> str:
    t = text.lower()
    if t.startswith("n"):
        return "nm"
    if t.startswith(("u", "µ", "μ", "micro")):
        return "um"
    return "cm-1"


def wavelength_feature(wavelength: float) -> str:
    """The feature name of the band at ``wavelength``: ``wl_450.0``."""
    return f"{WAVELENGTH_PREFIX}{float(wavelength)}"


def spectral_columns(columns: Sequence[str]) -> list[str]:
    """The hyperspectral band features among ``columns``, in increasing wavelength order."""
    out = []
    for c in columns:
        if c.startswith(WAVELENGTH_PREFIX):
            try:
                out.append((float(c[len(WAVELENGTH_PREFIX) :]), c))
            except ValueError:
                continue
    return [c for _, c in sorted(out)]


def _parse_wavelength(description: str, tags: Mapping[str, str], unit: str) -> float | None:
    """The wavelength of one band (in ``unit``) from its description or tags, or None."""
    candidates = [description] + [
        f"{v} {tags.get('wavelength_units', tags.get('WAVELENGTH_UNITS', ''))}".strip()
        for k, v in tags.items()
        if k.lower() == "wavelength"
    ]
    for text in candidates:
        m = _WITH_UNIT.search(text)
        if m is not None:
            value, found = float(m.group(1)), _unit_of(m.group(2))
            if found == unit:
                return value
            if found in _UNITS and unit in _UNITS:
                return value * _UNITS[found] / _UNITS[unit]
            return None  # wavenumbers vs wavelengths: no guessing
        if _NUMBER.fullmatch(text) and text.strip():
            return float(text)
    return None


def band_wavelengths(
    bands: Sequence[tuple[str, Mapping[str, str]]],
    wavelengths: Sequence[float] | None,
    *,
    unit: str = "nm",
    what: str = "hyperspectral raster",
) -> list[float]:
    """One wavelength per band: the configured list, or parsed from the band descriptions.

    Parameters
    ----------
    bands : sequence of (description, tags)
        Per band of the raster (:func:`geohm.io.rasters.band_metadata`).
    wavelengths : sequence of float or None
        The configured wavelengths (one per band, band order); None parses the band
        descriptions (``"450"``, ``"450 nm"``, ``"Band 1 (450.0 nm)"``, ``"0.45 um"``) or
        a ``wavelength`` band tag, converted to ``unit``.
    unit : {"nm", "um", "cm-1"}
        Unit of the result.

    Raises
    ------
    InputError
        The counts differ, a band has no readable wavelength, or two bands share one.
    """
    if wavelengths is not None:
        if len(wavelengths) != len(bands):
            raise InputError(
                f"{what} has {len(bands)} band(s) but 'hyperspectral.wavelengths' lists "
                f"{len(wavelengths)}; give one wavelength per band"
            )
        out = [float(w) for w in wavelengths]
    else:
        out = []
        for i, (desc, tags) in enumerate(bands, start=1):
            w = _parse_wavelength(desc, tags, unit)
            if w is None:
                raise InputError(
                    f"{what}: band {i} has no wavelength in its description ({desc!r}); "
                    f"describe each band by its wavelength (e.g. '450 nm') or list them in "
                    f"'hyperspectral.wavelengths' ({len(bands)} numbers, in {unit})"
                )
            out.append(w)
    names = [wavelength_feature(w) for w in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{what}: two bands have the same wavelength ({', '.join(dup)})")
    return out


def available_features(
    bands: Sequence[str], *, has_dem: bool, covariates: Sequence[str] = ()
) -> list[str]:
    """Every feature that can be computed from the given inputs, in cube order.

    Parameters
    ----------
    bands : sequence of str
        Reflectance band names present (``blue``, ``nir``, ...).
    has_dem : bool
        Whether a DEM is given (enables elevation, slope, aspect).
    covariates : sequence of str
        Names of covariate rasters.
    """
    out = [b for b in bands if b != "coastal"]
    refl = set(bands)
    out += [name for name in INDEX_NAMES if set(INDEX_BANDS[name]) <= refl]
    if has_dem:
        out += list(TERRAIN_FEATURES)
    out += list(covariates)
    return out


def resolve_features(requested: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """Expand ``"auto"`` or check a user's feature list against what is available.

    The coordinates ``x`` and ``y`` (:data:`COORDINATE_FEATURES`) can always be listed;
    ``"auto"`` does not include them.

    Raises
    ------
    ConfigError
        A requested feature cannot be computed; the message names it and lists the
        available ones.
    """
    if isinstance(requested, str):
        if requested != ALL_FEATURES:
            raise ConfigError(f"key 'features': expected 'auto' or a list, got '{requested}'")
        return list(available)
    missing = [f for f in requested if f not in available and f not in COORDINATE_FEATURES]
    if missing:
        raise ConfigError(
            f"key 'features': {', '.join(repr(m) for m in missing)} cannot be computed from the "
            f"inputs (available: {', '.join(available)}); add the band/DEM/covariate or remove it"
        )
    if len(set(requested)) != len(requested):
        raise ConfigError("key 'features': a feature is listed twice")
    return list(requested)


def _same_grid(a: xr.DataArray, b: xr.DataArray, what: str) -> None:
    if a.sizes["y"] != b.sizes["y"] or a.sizes["x"] != b.sizes["x"]:
        raise GridError(
            f"{what} is {b.sizes['y']}x{b.sizes['x']} pixels but the scene grid is "
            f"{a.sizes['y']}x{a.sizes['x']}; open it aligned onto the scene grid"
        )
    if not (
        np.allclose(a["x"].values, b["x"].values) and np.allclose(a["y"].values, b["y"].values)
    ):
        raise GridError(f"{what} is not on the scene grid (its coordinates differ)")


def _grid_of(
    reflectance: xr.DataArray | None, covariates: Mapping[str, xr.DataArray]
) -> tuple[list[str], xr.DataArray, xr.DataArray]:
    """Band names, a (y, x) template of the grid and the layer carrying the CRS."""
    if reflectance is not None:
        bands = [str(b) for b in reflectance["band"].values]
        return bands, reflectance.isel(band=0, drop=True), reflectance
    if covariates:
        template = next(iter(covariates.values()))
        return [], template, template
    raise ConfigError("the scene has no imagery and no covariates: nothing to stack")


def stack_features(
    reflectance: xr.DataArray | None,
    features: Sequence[str],
    *,
    dem: xr.DataArray | None = None,
    covariates: Mapping[str, xr.DataArray] | None = None,
) -> xr.DataArray:
    """Stack the requested features into one lazy (feature, y, x) float32 cube.

    Parameters
    ----------
    reflectance : xarray.DataArray or None
        (band, y, x) reflectance (0-1) with word band names; thermal in kelvin. None for
        a scene of covariates only: the first covariate then sets the grid.
    features : sequence of str
        Feature names, as returned by :func:`resolve_features`.
    dem : xarray.DataArray, optional
        (y, x) elevation in metres, already on the reflectance grid.
    covariates : mapping of str to xarray.DataArray, optional
        (y, x) layers already on the reflectance grid.

    Returns
    -------
    xarray.DataArray
        (feature, y, x) float32, the reflectance grid's coordinates and CRS.

    Raises
    ------
    GridError
        A layer is not on the reflectance grid.
    ConfigError
        A feature has no source.
    """
    # One feature path: the lazy cube is the window-by-window source read chunk by chunk,
    # so the cube, the sample points and the map windows hold the same numbers.
    return WindowSource(reflectance, features, dem=dem, covariates=covariates).lazy()


class WindowReader(Protocol):
    """Reads (rows, cols) float32 windows of one layer on the scene grid, thread-safe."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        ...

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        """The window with its top-left pixel at (row_off, col_off)."""
        ...


class WindowSource:
    """The feature cube, window by window: the one place features are computed.

    :meth:`read` reads only the raw layers under a window (the DEM with a one-pixel
    halo when slope or aspect is asked) and computes the indices and terrain of that
    window. The lazy cube of :func:`stack_features` is this source read chunk by chunk
    (:meth:`lazy`), the sample points are read through it
    (:func:`geohm.sampling.sample_cube`) and so is every map window: the features a
    model is trained on are, bit for bit, those it maps with. Safe to call from several
    threads at once (raster reads go through :mod:`geohm.io`).

    Layers are read as windows of their (lazy) DataArrays, which computes every dask
    chunk the window touches. A reader given in ``dem_reader`` / ``layer_readers`` (the
    :class:`~geohm.io.reading.AlignedRaster` behind the layer) reads just the window
    from its cached tiles instead, with the same values.

    Parameters
    ----------
    reflectance, features, dem, covariates
        As in :func:`stack_features`.
    extra : mapping of str to xarray.DataArray, optional
        More (y, x) float32 layers on the scene grid appended after ``features`` (the
        pH and land-use rasters of the risk layers).
    dem_reader : WindowReader, optional
        Reads windows of ``dem`` directly.
    layer_readers : mapping of str to WindowReader, optional
        Covariate or extra layer name -> reads windows of that layer directly.
    owned_readers : collection of str, optional
        The layer readers :meth:`close` closes; default: every reader given. Readers
        shared with other sources or lazy layers (the scene's tile readers) are left
        open: closing them under another thread's read would fail that read.

    Attributes
    ----------
    features : list of str
        ``features`` then the ``extra`` names: the order of :meth:`read`'s first axis.
    shape : (int, int)
        Rows and columns of the scene grid.

    Raises
    ------
    GridError, ConfigError, InputError
        As :func:`stack_features` (a layer off the grid, a feature without a source, a
        band an index needs is missing).
    """

    def __init__(
        self,
        reflectance: xr.DataArray | None,
        features: Sequence[str],
        *,
        dem: xr.DataArray | None = None,
        covariates: Mapping[str, xr.DataArray] | None = None,
        extra: Mapping[str, xr.DataArray] | None = None,
        dem_reader: WindowReader | None = None,
        layer_readers: Mapping[str, WindowReader] | None = None,
        owned_readers: Collection[str] | None = None,
    ) -> None:
        covariates = dict(covariates or {})
        extra = dict(extra or {})
        bands, template, georef = _grid_of(reflectance, covariates)
        features = [str(f) for f in features]
        clash = [n for n in extra if n in features]
        if clash:
            raise ConfigError(f"extra layer(s) {clash} repeat a feature name")
        self.features: list[str] = [*features, *extra]
        self.shape: tuple[int, int] = (int(template.sizes["y"]), int(template.sizes["x"]))
        self._template = template
        self._georef = georef
        self._index_names = [f for f in features if f in INDEX_NAMES]
        terrain_names = [f for f in features if f in TERRAIN_FEATURES]
        refl_bands: list[str] = []
        if self._index_names:
            if reflectance is None:
                raise ConfigError(
                    f"key 'features': {', '.join(self._index_names)} need imagery "
                    "('landsat' or 'bands')"
                )
            for name in self._index_names:
                for band in INDEX_BANDS[name]:
                    if band not in bands:
                        raise InputError(
                            f"{name} needs band {band!r} but the reflectance has bands "
                            f"{bands}; add it to `bands:` or drop {name} from `features:`"
                        )
                    if band not in refl_bands:
                        refl_bands.append(band)
        self._terrain: TerrainWindows | None = None
        if terrain_names:
            if dem is None:
                raise ConfigError(
                    f"key 'features': {', '.join(terrain_names)} need a DEM; add 'dem:' to "
                    "the config"
                )
            _same_grid(template, dem, "the DEM")
            self._terrain = TerrainWindows(
                terrain_names, self.shape, crs=georef.rio.crs, transform=georef.rio.transform()
            )
            self._dem = dem
        for name, cov in covariates.items():
            _same_grid(template, cov, f"covariate '{name}'")
        # Where each feature comes from, with the precedence of stack_features.
        self._coords = {
            name: np.asarray(template[name].values, dtype="float64")
            for name in COORDINATE_FEATURES
            if name in features
        }
        self._plan: list[tuple[str, str]] = []
        self._layers: dict[str, xr.DataArray] = {}
        for f in features:
            if f in self._index_names:
                self._plan.append(("index", f))
            elif f in terrain_names:
                self._plan.append(("terrain", f))
            elif f in self._coords:
                self._plan.append(("coord", f))
            elif reflectance is not None and f in bands:
                self._plan.append(("band", f))
                if f not in refl_bands:
                    refl_bands.append(f)
            elif f in covariates:
                self._plan.append(("layer", f))
                self._layers[f] = covariates[f]
            else:
                raise ConfigError(f"key 'features': no input provides '{f}'")
        for name, layer in extra.items():
            self._plan.append(("layer", name))
            self._layers[name] = layer
        self._readers: dict[str, WindowReader] = {}
        for name, reader in (layer_readers or {}).items():
            if name not in covariates and name not in extra:
                raise ConfigError(f"a window reader for '{name}', which is no layer")
            self._check_reader(reader, f"layer '{name}'")
            if name in self._layers:  # covariates no feature uses are never read
                self._readers[name] = reader
        self._owned = None if owned_readers is None else set(owned_readers)
        self._dem_reader = None
        if dem_reader is not None:
            if dem is None:
                raise ConfigError("a window reader for the DEM, but no DEM")
            self._check_reader(dem_reader, "the DEM")
            self._dem_reader = dem_reader
        self._bands = refl_bands
        self._refl = None
        if refl_bands:
            assert reflectance is not None
            self._refl = reflectance if refl_bands == bands else reflectance.sel(band=refl_bands)

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        """The (feature, rows, cols) float32 block of one window.

        Equal (bit for bit) to the same window of :func:`stack_features` with the
        ``extra`` layers appended.

        Raises
        ------
        ValueError
            The window is empty or reaches outside the grid.
        InputError
            A raster block cannot be read (a damaged file).
        """
        ny, nx = self.shape
        if rows < 1 or cols < 1 or row_off < 0 or col_off < 0:
            raise ValueError(f"bad window {(row_off, col_off, rows, cols)}")
        if row_off + rows > ny or col_off + cols > nx:
            raise ValueError(f"window {(row_off, col_off, rows, cols)} exceeds the grid {ny}x{nx}")
        win = {"y": slice(row_off, row_off + rows), "x": slice(col_off, col_off + cols)}
        # One dask pass per layer: two warps of the same file share their dask keys
        # (rioxarray names them after the file), so a merged graph would mix them up.
        refl = read_block(self._refl.isel(win)) if self._refl is not None else None
        ter = None
        if self._terrain is not None:
            halo = self._terrain.halo_window(row_off, col_off, rows, cols)
            if self._dem_reader is not None:
                z = self._dem_reader.read(*halo)
            else:
                r0, c0, h0, w0 = halo
                z = read_block(self._dem.isel(y=slice(r0, r0 + h0), x=slice(c0, c0 + w0)))
            ter = self._terrain.compute(z, row_off, col_off, rows, cols)
        layers = {
            name: (
                self._readers[name].read(row_off, col_off, rows, cols)
                if name in self._readers
                else read_block(layer.isel(win))
            )
            for name, layer in self._layers.items()
        }
        idx = None
        if self._index_names:
            assert refl is not None
            idx = index_array(refl, self._bands, self._index_names)
        out = np.empty((len(self.features), rows, cols), dtype=np.float32)
        for k, (kind, name) in enumerate(self._plan):
            if kind == "index":
                assert idx is not None
                out[k] = idx[self._index_names.index(name)]
            elif kind == "terrain":
                assert ter is not None and self._terrain is not None
                out[k] = ter[self._terrain.names.index(name)]
            elif kind == "coord":
                values = self._coords[name]
                if name == "x":
                    out[k] = 0.0 + values[None, col_off : col_off + cols]
                else:
                    out[k] = 0.0 + values[row_off : row_off + rows, None]
            elif kind == "band":
                assert refl is not None
                out[k] = refl[self._bands.index(name)]
            else:
                out[k] = layers[name]
        return out

    @property
    def crs(self) -> Any:
        """The grid's CRS (rasterio ``CRS``)."""
        return self._georef.rio.crs

    @property
    def transform(self) -> Any:
        """The grid's affine transform (pixel to map coordinates)."""
        return self._georef.rio.transform()

    def __getitem__(self, key: Any) -> np.ndarray:
        """``source[features, rows, cols]``: numpy basic or integer-array indexing.

        What dask asks for (slices of any step, integers, integer arrays); only the
        bounding box of the rows and columns is read.
        """
        return window_index(self.read, self.shape, key, lead=1)

    @property
    def dtype(self) -> np.dtype:
        """float32, as :meth:`read` returns."""
        return np.dtype("float32")

    @property
    def ndim(self) -> int:
        """3: (feature, y, x)."""
        return 3

    def lazy(self, chunks: int = TILE) -> xr.DataArray:
        """The source as a lazy (feature, y, x) float32 cube with the grid's coordinates.

        Each dask chunk (every feature, ``chunks`` x ``chunks`` pixels) is one
        :meth:`read`: the lazy cube, the sample points and the map windows come from the
        same code.
        """
        ny, nx = self.shape
        data = dask.array.from_array(
            _Shaped(self, (len(self.features), ny, nx)),
            chunks=(len(self.features), chunks, chunks),
            name=f"cube-{uuid.uuid4().hex}",
            asarray=False,
            lock=False,
            meta=np.empty((0, 0, 0), dtype=np.float32),
        )
        cube = xr.DataArray(
            data,
            dims=("feature", "y", "x"),
            coords={"feature": self.features, "y": self._template["y"], "x": self._template["x"]},
        )
        if "spatial_ref" in self._georef.coords:
            cube = cube.assign_coords(spatial_ref=self._georef["spatial_ref"])
        cube.attrs = {"long_name": "geohm feature cube"}
        return cube

    def _check_reader(self, reader: WindowReader, what: str) -> None:
        if tuple(reader.shape) != self.shape:
            raise GridError(
                f"the window reader of {what} is {reader.shape[0]}x{reader.shape[1]} pixels "
                f"but the scene grid is {self.shape[0]}x{self.shape[1]}"
            )

    def close(self) -> None:
        """Close the window readers this source owns (those that can be closed)."""
        owned = self._owned
        readers = [r for n, r in self._readers.items() if owned is None or n in owned]
        if self._dem_reader is not None and owned is None:
            readers.append(self._dem_reader)
        for reader in readers:
            close = getattr(reader, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> WindowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Shaped:
    """A :class:`WindowSource` with the ``shape`` of its cube, for ``dask.array.from_array``."""

    def __init__(self, source: WindowSource, shape: tuple[int, int, int]) -> None:
        self.source = source
        self.shape = shape
        self.dtype = source.dtype
        self.ndim = 3

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.source[key]


def valid_mask(block: np.ndarray) -> np.ndarray:
    """Pixels of a (feature, y, x) block where every feature is finite."""
    return np.all(np.isfinite(block), axis=0)
