"""Read a table of soil spectra and soil properties (CSV, optionally gzipped).

The layout is the one of the OSSL/KSSL exports (and of the KSSL sample under
``tests/data/kssl``): one row per soil sample, an identifier column, property
columns, and one column per spectral point whose header is the number of that
point (a wavenumber in cm-1 or a wavelength in nm), e.g. ``600, 602, ..., 4000``.
Columns whose header parses as a number are the spectrum; the others (except the
identifier) are the properties.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from geohm.errors import InputError

__all__ = ["SoilSpectra", "read_spectra"]


@dataclass(frozen=True)
class SoilSpectra:
    """Spectra of soil samples with their measured properties.

    Attributes
    ----------
    axis : ndarray of shape (n_points,)
        The spectral axis as given in the file, increasing, in ``unit``.
    unit : {"cm-1", "nm"}
        Unit of ``axis``: wavenumber (cm-1) or wavelength (nm).
    spectra : ndarray of shape (n_samples, n_points)
        One spectrum per row (float64), columns in the order of ``axis``; for the
        KSSL mid-infrared data, absorbance (log10(1/R), dimensionless).
    targets : pandas.DataFrame
        The soil properties, one row per sample, indexed by sample identifier, with
        the file's column names (which carry the units, e.g. ``oc_usda.c729_w.pct``
        is organic carbon in weight %).
    """

    axis: np.ndarray
    unit: Literal["cm-1", "nm"]
    spectra: np.ndarray
    targets: pd.DataFrame

    @property
    def wavenumbers(self) -> np.ndarray:
        """Spectral axis as wavenumbers (cm-1), in the column order of ``spectra``."""
        return self.axis if self.unit == "cm-1" else 1e7 / self.axis

    @property
    def wavelengths(self) -> np.ndarray:
        """Spectral axis as wavelengths (nm), in the column order of ``spectra``."""
        return self.axis if self.unit == "nm" else 1e7 / self.axis

    @property
    def ids(self) -> np.ndarray:
        """Sample identifiers, in row order."""
        return self.targets.index.to_numpy()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_spectra(
    path: str | os.PathLike[str],
    *,
    unit: Literal["cm-1", "nm"] = "cm-1",
    id_column: str = "id",
    sha256: str | None = None,
) -> SoilSpectra:
    """Read spectra and soil properties from a CSV table (``.csv`` or ``.csv.gz``).

    Parameters
    ----------
    path : path-like
        The table. Spectral columns are those whose header is a number.
    unit : {"cm-1", "nm"}, default "cm-1"
        Unit of the numeric headers: wavenumber (cm-1, mid-infrared libraries) or
        wavelength (nm, vis-NIR).
    id_column : str, default "id"
        Column of sample identifiers (unique).
    sha256 : str, optional
        Expected SHA-256 of the file; a mismatch raises :class:`InputError`.

    Returns
    -------
    SoilSpectra
        Spectral axis (sorted increasing), spectra and properties.

    Raises
    ------
    InputError
        The file is missing, unreadable or corrupt (bad gzip, checksum mismatch),
        lacks the identifier or spectral columns, has duplicate identifiers or
        spectral points, or holds missing or non-numeric spectral values.

    Examples
    --------
    >>> data = read_spectra("tests/data/kssl/toy_kssl_mir.csv.gz")  # doctest: +SKIP
    >>> data.spectra.shape, data.axis[[0, -1]]  # doctest: +SKIP
    ((500, 1701), array([ 600., 4000.]))
    """
    file = Path(path)
    if unit not in ("cm-1", "nm"):
        raise ValueError(f"unit must be 'cm-1' or 'nm', got {unit!r}")
    if not file.is_file():
        raise InputError(f"spectra file {file} does not exist (or is not a file)")
    if sha256 is not None:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if digest != sha256.lower():
            raise InputError(
                f"spectra file {file} has SHA-256 {digest}, expected {sha256.lower()}: "
                "the file is corrupt or not the expected version"
            )
    try:
        table = pd.read_csv(file, compression="infer")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise InputError(f"spectra file {file} is not a readable CSV table: {err}") from err
    except pd.errors.EmptyDataError as err:
        raise InputError(f"spectra file {file} is empty") from err
    if id_column not in table.columns:
        raise InputError(f"spectra file {file} has no identifier column {id_column!r}")
    if table[id_column].duplicated().any():
        dup = table.loc[table[id_column].duplicated(), id_column].iloc[0]
        raise InputError(f"spectra file {file}: sample identifier {dup!r} appears twice")
    spectral = [c for c in table.columns if c != id_column and _is_number(str(c))]
    if len(spectral) < 2:
        raise InputError(
            f"spectra file {file} has {len(spectral)} spectral column(s) (numeric headers "
            f"such as '600'); a spectrum needs at least 2"
        )
    axis = np.array([float(c) for c in spectral])
    if np.unique(axis).size != axis.size:
        raise InputError(f"spectra file {file} repeats a spectral point in its headers")
    values = table[spectral].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        sample = str(table[id_column].iloc[row])
        raise InputError(
            f"spectra file {file}: {int(bad.sum())} missing or non-numeric spectral "
            f"value(s), first at sample {sample!r}, column {spectral[col]!r}"
        )
    order = np.argsort(axis)
    targets = table.drop(columns=spectral).set_index(id_column)
    return SoilSpectra(axis=axis[order], unit=unit, spectra=values[:, order], targets=targets)
