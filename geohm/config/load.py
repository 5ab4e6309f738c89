"""Reading and validating a scene job: YAML -> :class:`~geohm.config.schema.SceneConfig`.

Unknown keys are an error (with a "did you mean" hint), relative paths resolve against
the config file's folder, and every problem becomes a :class:`~geohm.errors.ConfigError`
whose one-line message names the key.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from geohm.config.schema import SceneConfig
from geohm.config.stac import StacSpec
from geohm.errors import ConfigError
from geohm.io.text import read_text

__all__ = ["load_config", "parse_config"]


def _key_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not any(c in str(p) for c in "[(-")]
    return ".".join(parts) or "(top level)"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``X | None`` or ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at ``loc`` (best effort, for the did-you-mean hint)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None:
            return []
        field = current.model_fields.get(str(part))
        if field is not None:
            current = _model_in(field.annotation)
        # else: a mapping key (a covariate name): stay on the value model
    return list(current.model_fields) if current is not None else []


def _one_line(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = _key_path(loc)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(SceneConfig, loc)
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        tip = f"; did you mean '{hint[0]}'?" if hint else f"; allowed keys: {', '.join(allowed)}"
        return f"{source}: unknown key '{key}'{tip}"
    if err["type"] == "missing":
        return f"{source}: missing required key '{key}'"
    msg = err["msg"].removeprefix("Value error, ")
    extra = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return f"{source}: key '{key}': {msg}{extra}"


def _resolve(obj: Any, base: Path) -> None:
    """Make every relative Path in a parsed config absolute against ``base``.

    A ``landsat: {stac: FILE}`` file resolves the same way; a URL stays as it is.
    """
    if isinstance(obj, StacSpec):
        obj.resolve(base)
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            value = getattr(obj, name)
            if isinstance(value, Path):
                if not value.is_absolute():
                    setattr(obj, name, (base / value).resolve())
            else:
                _resolve(value, base)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, Path):
                obj[k] = v if v.is_absolute() else (base / v).resolve()
            else:
                _resolve(v, base)


def parse_config(
    data: Any, *, base_dir: str | os.PathLike[str] = ".", source: str = "config"
) -> SceneConfig:
    """Validate a config mapping; resolve relative paths against ``base_dir``.

    Raises
    ------
    ConfigError
        With one line naming the offending key.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a scene config must be a mapping of keys, got {type(data).__name__}"
        )
    try:
        cfg = SceneConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None
    _resolve(cfg, Path(base_dir).resolve())
    if cfg.risk is not None and cfg.risk.standard.lower().endswith((".csv", ".yaml", ".yml")):
        std = Path(cfg.risk.standard)
        cfg.risk.standard = str(std if std.is_absolute() else Path(base_dir).resolve() / std)
    return cfg


def read_yaml(path: Path, *, what: str) -> Any:
    """The parsed YAML of a config file.

    Raises
    ------
    InputError
        The file does not exist or cannot be read.
    ConfigError
        Invalid YAML (the message names the file and line).
    """
    text = read_text(path, what=what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None


def load_config(
    path: str | os.PathLike[str], *, output_dir: str | os.PathLike[str] | None = None
) -> SceneConfig:
    """Read and validate a scene YAML file.

    Parameters
    ----------
    path : path-like
        The YAML file; relative paths inside resolve against its folder.
    output_dir : path-like, optional
        Overrides ``output.dir`` (the command line's ``--out``), relative to the
        current directory.

    Returns
    -------
    SceneConfig
        The validated job, its paths resolved against the file's folder.

    Raises
    ------
    InputError
        The file does not exist or cannot be read.
    ConfigError
        Invalid YAML or schema; the message names the key.
    """
    p = Path(path)
    data = read_yaml(p, what="scene config")
    cfg = parse_config(data, base_dir=p.parent, source=str(p))
    if output_dir is not None:
        cfg.output.dir = Path(output_dir).resolve()
    return cfg
