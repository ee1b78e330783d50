"""
Distribution transforms (:mod:`structax.transform`)
===================================================

Map samples onto any target distribution, ``R = F_target^-1 o F_source``, exactly and invertibly,
and transfer colours between images.

Estimators
----------
Redistributor    scikit-learn transformer; exact empirical CDF (mid-ranks for ties), smoothed
                 PCHIP or binned-FFT KDE source, or an analytic scipy source; exponential tails
                 beyond the fitted range; ``partial_fit`` with mergeable KLL sketches; Dask input.

Functions
---------
match_colors     colour transfer: ``"per-channel"``, ``"lab"`` or ``"ot"`` (sliced optimal transport)
isj_bandwidth    improved Sheather-Jones KDE bandwidth on binned data (used by ``source="kde"``)

Examples
--------
>>> import numpy as np
>>> import structax as sx
>>> x = np.random.default_rng(1).lognormal(size=500)
>>> y = sx.Redistributor(target="normal").fit_transform(x)
>>> round(float(np.median(y)), 6)
0.0
"""
from ._colors import match_colors
from ._redistributor import Redistributor
from ._smooth import isj_bandwidth

__all__ = ["Redistributor", "match_colors", "isj_bandwidth"]
