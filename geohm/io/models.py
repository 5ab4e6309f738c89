"""Saving and loading fitted geohm models (joblib)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib

from geohm.errors import InputError
from geohm.io.rasters import atomic_path

__all__ = ["load_model", "save_model"]

_KIND = "geohm-model"


def save_model(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a fitted-model bundle atomically (joblib, compressed).

    ``payload`` holds ``targets: {name: {"estimator", "features"}}`` plus metadata.
    Only load bundles you trust: joblib files can run code when loaded.
    """
    final = Path(path)
    with atomic_path(final) as tmp:
        joblib.dump({"kind": _KIND, **payload}, tmp, compress=3)
    return final


def load_model(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a bundle written by :func:`save_model`.

    Raises
    ------
    InputError
        Missing file, not a geohm model, or unreadable.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(
            f"model file '{p}' does not exist; it is written as model.joblib by geohm run"
        )
    try:
        payload = joblib.load(p)
    except Exception as exc:  # joblib/pickle raise many types on a bad file
        raise InputError(
            f"model file '{p}' cannot be read ({exc}); write it again with geohm run"
        ) from None
    if not isinstance(payload, dict) or payload.get("kind") != _KIND:
        raise InputError(f"'{p}' is not a geohm model file (model.joblib from geohm run)")
    return payload
