"""Checks that a written GeoTIFF is complete.

Its block index is checked against the file size and its last blocks are decoded (GDAL
reports some failed writes only on stderr).
"""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers the .rio accessor)
from rasterio._err import CPLE_BaseError  # raised as is by rasterio.shutil.copy
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geohm.io.atomic import IncompleteWrite


def verify_geotiff(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int] | None = None,
    dtype: str | None = None,
) -> None:
    """Check that a GeoTIFF just written is complete; cheap (no full read).

    The file is opened again (its header), every block of every band and overview
    level must be recorded in the block index and lie inside the file (a block whose
    write failed has no byte count, and GDAL would read it as nodata without a word),
    and the last block of the full resolution and of each overview is decoded. In a
    Cloud-Optimised GeoTIFF the size written before each block and the copy of its last
    4 bytes written after it (GDAL's block leader and trailer) are compared for those
    last blocks too, so a file cut off even in its last bytes is found.

    Parameters
    ----------
    path : path-like
        The written (temporary) file.
    shape : (bands, rows, columns), optional
        What the header must say.
    dtype : str, optional
        The data type the header must say.

    Raises
    ------
    IncompleteWrite
        The file is truncated, a block is missing, or the header is not as written.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(1024)
            layout = _Layout(
                size=size,
                order="<" if head[:2] == b"II" else ">",
                leader=b"BLOCK_LEADER=SIZE_AS_UINT4" in head,
                trailer=b"BLOCK_TRAILER=LAST_4_BYTES_REPEATED" in head,
            )
            with rasterio.open(p) as src:
                got = (src.count, src.height, src.width)
                if shape is not None and got != tuple(shape):
                    raise IncompleteWrite(
                        f"its header says {got} (bands, rows, columns), not {shape}"
                    )
                if dtype is not None and src.dtypes[0] != np.dtype(dtype).name:
                    raise IncompleteWrite(f"its header says {src.dtypes[0]}, not {dtype}")
                levels = len(src.overviews(1))
                _verify_level(src, fh, layout, "full resolution")
            for level in range(levels):
                with rasterio.open(p, overview_level=level) as ovr:
                    _verify_level(ovr, fh, layout, f"overview {level + 1}")
    except (RasterioError, CPLE_BaseError) as exc:
        raise IncompleteWrite(f"it cannot be read back ({exc})") from exc


@dataclasses.dataclass(frozen=True)
class _Layout:
    """What :func:`verify_geotiff` knows of a file: its size, byte order, block framing."""

    size: int
    order: str  # struct byte order of the TIFF
    leader: bool  # a uint32 block size before each block (COG)
    trailer: bool  # the block's last 4 bytes repeated after it (COG)


def _verify_level(ds: Any, fh: Any, layout: _Layout, what: str) -> None:
    bh, bw = ds.block_shapes[0]
    nby, nbx = -(-ds.height // bh), -(-ds.width // bw)
    extra = 4 if layout.trailer else 0
    for band in range(1, ds.count + 1):
        for by in range(nby):
            for bx in range(nbx):
                offset = ds.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=band)
                nbytes = ds.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=band)
                if not offset or not nbytes or int(offset) + int(nbytes) + extra > layout.size:
                    raise IncompleteWrite(
                        f"block ({by}, {bx}) of band {band} ({what}) is missing or cut off "
                        f"(offset {offset}, {nbytes} bytes, file {layout.size} bytes)"
                    )
                if by == nby - 1 and bx == nbx - 1:  # the last block: its framing too
                    _verify_framing(fh, layout, int(offset), int(nbytes), f"{what}, band {band}")
    col0, row0 = (nbx - 1) * bw, (nby - 1) * bh
    ds.read(window=Window(col0, row0, ds.width - col0, ds.height - row0))


def _verify_framing(fh: Any, layout: _Layout, offset: int, nbytes: int, what: str) -> None:
    if layout.leader and offset >= 4:
        fh.seek(offset - 4)
        (leader,) = struct.unpack(layout.order + "I", fh.read(4))
        if leader != nbytes:
            raise IncompleteWrite(f"the last block ({what}) says {leader} bytes, not {nbytes}")
    if layout.trailer and nbytes >= 4:
        fh.seek(offset + nbytes - 4)
        tail = fh.read(8)
        if tail[:4] != tail[4:]:
            raise IncompleteWrite(f"the last block ({what}) is cut off or damaged")
