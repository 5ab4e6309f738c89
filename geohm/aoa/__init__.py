"""Area of applicability (Meyer & Pebesma 2021).

Where a model's predictors resemble its training data (:mod:`geohm.aoa.index`), and
what the dissimilarity index says about the expected error and about covariate shift
between years (:mod:`geohm.aoa.profile`).
"""

from geohm.aoa.index import (
    AOA_INSIDE,
    AOA_NODATA,
    AOA_OUTSIDE,
    AreaOfApplicability,
    aoa_threshold,
    fit_aoa,
)
from geohm.aoa.profile import CovariateShift, ErrorProfile, covariate_shift, error_profile

__all__ = [
    "AOA_INSIDE",
    "AOA_NODATA",
    "AOA_OUTSIDE",
    "AreaOfApplicability",
    "CovariateShift",
    "ErrorProfile",
    "aoa_threshold",
    "covariate_shift",
    "error_profile",
    "fit_aoa",
]
