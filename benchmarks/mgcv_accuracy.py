"""Accuracy of structax against R's mgcv reference fits (tests/fixtures/mgcv), as a markdown table.

For each case: the largest |fitted mean (structax) − fitted mean (mgcv)| relative to sd(y) (bar: 2%),
the total edf of both (bar: within 15%) and structax's fit time. The same cases and bars are asserted
in tests/test_mgcv_reference.py; this script prints the numbers for the README.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_mgcv_reference import CASES  # noqa: E402  (one list of cases for tests and this table)

import structax as sx  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mgcv"


def main() -> None:
    print("| case | n | max \\|structax − mgcv\\| / sd(y) | edf structax | edf mgcv | fit s |")
    print("|---|---|---|---|---|---|")
    for name, (formula, family, extra) in CASES.items():
        ref = json.loads((FIXTURES / f"{name}.json").read_text())
        data = pd.DataFrame(ref["data"])
        start = time.perf_counter()
        model = sx.Model(formula, family=family, progress=False, **extra).fit(data)
        seconds = time.perf_counter() - start
        diff = np.max(np.abs(model.mean(data) - np.asarray(ref["fitted"]))) / data[model.response_].std()
        edf = model.edf_.sum()
        print(f"| {name} | {len(data)} | {diff:.4f} | {edf:.2f} | {ref['edf_total']:.2f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
