"""The SERIES.yaml schema of ``geohm series``: monitoring-well series and their forecasts.

Every key is described here with its units; unknown keys are an error (with a "did you
mean" hint) and every problem is a :class:`~geohm.errors.ConfigError` whose one line
names the key. Relative paths resolve against the YAML file's folder.

Example (the synthetic wells of :mod:`geohm.synth.wells`)::

    name: synthetic-wells
    data:
      path: wells.csv            # long table: site, time, metals, covariates, x, y
      metals: [Cd]
      units: ug/l
      covariates: [rainfall]
      crs: EPSG:32633
    step: month
    horizon: 3
    lags: 12
    warning: {thresholds: {Cd: 5.0}}
    output: {dir: out/wells}
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geohm.config.load import read_yaml
from geohm.errors import ConfigError

__all__ = [
    "SEASON_OF_STEP",
    "LSTMSettings",
    "SeriesConfig",
    "SeriesData",
    "SeriesOutput",
    "SeriesValidation",
    "SeriesWarning",
    "load_series_config",
    "parse_series_config",
]

#: Steps per year of each time step (the default season length).
SEASON_OF_STEP = {"day": 365, "week": 52, "month": 12, "quarter": 4, "year": 1}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeriesData(_Strict):
    """Where the series are and which columns hold what."""

    path: Path = Field(
        description="The long table: CSV, GeoPackage (.gpkg), or gstat's tull.rda (R data)"
    )
    layer: str | None = Field(default=None, description="GeoPackage layer (default: the first)")
    site: str = Field(default="site", description="Column of the site (well) id")
    time: str = Field(default="time", description="Column of the sampling date (ISO 8601)")
    time_format: str | None = Field(
        default=None, description="strptime format of the time column (default: ISO 8601)"
    )
    x: str = Field(default="x", description="Column of the site easting (CRS units)")
    y: str = Field(default="y", description="Column of the site northing (CRS units)")
    crs: str | None = Field(
        default=None, description="CRS of x, y (EPSG:xxxx); None: local coordinates, no CRS"
    )
    sites: Path | None = Field(
        default=None, description="Optional table of site coordinates (site, x, y): CSV, GPKG"
    )
    metals: list[str] = Field(min_length=1, description="Concentration columns to forecast")
    units: str = Field(default="mg/l", description="Units of the concentrations (for reports)")
    covariates: list[str] = Field(
        default_factory=list,
        description="Numeric covariate columns (rainfall mm, water level m, pumping m3/d, ...)",
    )


class LSTMSettings(_Strict):
    """The LSTM forecaster (:class:`geohm.models.lstm.LSTMForecaster`)."""

    hidden: int = Field(default=16, ge=1, le=512, description="LSTM units")
    layers: int = Field(default=1, ge=1, le=4, description="Stacked LSTM layers")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="Dropout rate (0-1)")
    members: int = Field(default=5, ge=1, le=50, description="Ensemble members (intervals)")
    epochs: int = Field(default=30, ge=1, description="Training passes over the windows")
    batch: int = Field(default=128, ge=1, description="Windows per training step")
    learning_rate: float = Field(default=0.01, gt=0.0, description="Adam step size")
    weight_decay: float = Field(default=1e-4, ge=0.0, description="Adam L2 penalty")
    device: str = Field(default="cpu", description="Torch device (cpu, cuda, cuda:1)")


class SeriesValidation(_Strict):
    """Rolling-origin and leave-sites-out validation (never random splits)."""

    origins: int = Field(default=3, ge=1, description="Rolling forecast origins (the last ones)")
    stride: int | None = Field(
        default=None, ge=1, description="Steps between origins (default: the horizon)"
    )
    site_folds: int = Field(
        default=3, ge=0, description="Leave-sites-out folds at the last origin (0: none)"
    )
    seed: int = Field(default=0, description="Seed of the site folds and the LSTM")


class SeriesWarning(_Strict):
    """Early warning: the probability of exceeding a limit within the horizon."""

    thresholds: dict[str, float] = Field(
        description="Limit per metal, in the data units (e.g. chloride: 180 mg/l)"
    )
    levels: tuple[float, float] = Field(
        default=(0.1, 0.5),
        description="Probability cut-offs (0-1): below the first low, then medium, then high",
    )
    interval: float = Field(
        default=0.9, gt=0.0, lt=1.0, description="Central interval of the plots (0-1)"
    )

    @model_validator(mode="after")
    def _check(self) -> SeriesWarning:
        lo, hi = self.levels
        if not 0.0 < lo < hi < 1.0:
            raise ValueError(f"levels must be two probabilities 0 < a < b < 1, got {self.levels}")
        return self


class SeriesOutput(_Strict):
    """Where the outputs go."""

    dir: Path = Field(description="Output folder (created)")
    plots: bool = Field(default=True, description="Write series/<site>.png")


class SeriesConfig(_Strict):
    """A ``geohm series`` job."""

    name: str = Field(description="Job name (reports)")
    data: SeriesData
    step: Literal["day", "week", "month", "quarter", "year"] = Field(
        default="month", description="Time step the series are put on"
    )
    aggregate: Literal["mean", "median", "max", "last"] = Field(
        default="mean", description="How samples in one step are combined"
    )
    season: int | None = Field(
        default=None, ge=1, description="Steps per seasonal cycle (default: steps per year)"
    )
    horizon: int = Field(default=3, ge=1, le=60, description="Steps ahead forecast (H)")
    lags: int = Field(default=12, ge=1, le=400, description="Steps of history the models see")
    min_observations: int = Field(
        default=8, ge=2, description="Observed steps a site needs (fewer: left out, listed)"
    )
    ridge_alpha: float = Field(
        default=1.0, ge=0.0, description="Penalty of the ridge-on-lags baseline"
    )
    lstm: LSTMSettings = Field(default_factory=lambda: LSTMSettings())
    validation: SeriesValidation = Field(default_factory=lambda: SeriesValidation())
    warning: SeriesWarning
    output: SeriesOutput

    @model_validator(mode="after")
    def _check(self) -> SeriesConfig:
        unknown = sorted(set(self.warning.thresholds) - set(self.data.metals))
        if unknown:
            raise ValueError(
                f"warning.thresholds names {unknown}, not in data.metals {self.data.metals}"
            )
        missing = [m for m in self.data.metals if m not in self.warning.thresholds]
        if missing:
            raise ValueError(f"warning.thresholds has no limit for {missing}; give one per metal")
        clash = set(self.data.metals) & set(self.data.covariates)
        if clash:
            raise ValueError(f"data.covariates repeats the metal column(s) {sorted(clash)}")
        return self

    @property
    def season_length(self) -> int:
        """Steps per seasonal cycle."""
        return self.season or SEASON_OF_STEP[self.step]

    @property
    def stride(self) -> int:
        """Steps between rolling origins."""
        return self.validation.stride or self.horizon


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _one_line(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    key = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        model: type[BaseModel] | None = SeriesConfig
        for part in loc[:-1]:
            field = model.model_fields.get(part) if model is not None else None
            model = _model_in(field.annotation) if field is not None else model
        allowed = list(model.model_fields) if model is not None else []
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        tip = f"; did you mean '{hint[0]}'?" if hint else f"; allowed keys: {', '.join(allowed)}"
        return f"{source}: unknown key '{key}'{tip}"
    if err["type"] == "missing":
        return f"{source}: missing required key '{key}'"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{source}: key '{key}': {msg}"


def parse_series_config(
    data: Any, *, base_dir: str | os.PathLike[str] = ".", source: str = "series config"
) -> SeriesConfig:
    """Validate a SERIES mapping; resolve relative paths against ``base_dir``.

    Parameters
    ----------
    data : mapping
        The parsed YAML.
    base_dir : path-like
        Folder that relative paths are relative to.
    source : str
        Name of the config in messages.

    Returns
    -------
    SeriesConfig

    Raises
    ------
    ConfigError
        One line naming the key at fault.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a series config must be a mapping of keys")
    try:
        cfg = SeriesConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None
    base = Path(base_dir).resolve()
    for holder, name in ((cfg.data, "path"), (cfg.data, "sites"), (cfg.output, "dir")):
        value = getattr(holder, name)
        if value is not None and not value.is_absolute():
            setattr(holder, name, (base / value).resolve())
    return cfg


def load_series_config(
    path: str | os.PathLike[str], *, output_dir: str | os.PathLike[str] | None = None
) -> SeriesConfig:
    """Read and validate a SERIES.yaml file.

    Parameters
    ----------
    path : path-like
        The YAML file.
    output_dir : path-like, optional
        Overrides ``output.dir`` (the command line's ``--out``).

    Returns
    -------
    SeriesConfig

    Raises
    ------
    InputError
        The file does not exist or cannot be read.
    ConfigError
        Invalid YAML or schema; the message names the key.
    """
    p = Path(path)
    data = read_yaml(p, what="series config")
    cfg = parse_series_config(data, base_dir=p.parent, source=str(p))
    if output_dir is not None:
        cfg.output.dir = Path(output_dir).resolve()
    return cfg
