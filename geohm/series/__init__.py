"""Monitoring-well series: forecasts of metals in groundwater and early warning (issue 17).

``geohm series SERIES.yaml`` (:func:`run_series`) forecasts each well's metal
concentrations ``H`` time steps ahead with an LSTM across wells
(:class:`geohm.models.lstm.LSTMForecaster`), compares it with persistence, the seasonal
naive forecast, the site climatology and ridge regression on lags by rolling origin and
leave-sites-out validation, and gives each well the probability of exceeding a limit
within the horizon.
"""

from geohm.series.config import SeriesConfig, load_series_config, parse_series_config
from geohm.series.run import SeriesResult, run_series

__all__ = [
    "SeriesConfig",
    "SeriesResult",
    "load_series_config",
    "parse_series_config",
    "run_series",
]
