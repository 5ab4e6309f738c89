"""Small text files geohm reads: scene configs, standards tables, scheduler files.

One place for the reading and its errors, so that only ``geohm/io`` touches files.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

from geohm.errors import InputError

__all__ = ["packaged_text", "read_text"]


def read_text(path: str | os.PathLike[str], *, what: str) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped).

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file is, for messages (``"scene config"``, ``"standards file"``).

    Raises
    ------
    InputError
        The file does not exist, cannot be read or is not UTF-8 text; the message names
        the file.
    """
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} '{p}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} '{p}' is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} '{p}' cannot be read: {exc}") from None


@functools.lru_cache(maxsize=16)
def packaged_text(package: str, filename: str) -> str:
    """The text of a data file shipped inside a geohm package (e.g. a standards table)."""
    return resources.files(package).joinpath(filename).read_text(encoding="utf-8")
