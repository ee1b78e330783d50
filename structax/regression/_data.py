"""Column access with validation: every error names the column, the term and what was expected."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["DataError", "Columns"]


class DataError(ValueError):
    """Input data do not fit the model: missing column, wrong type, NaN, unseen level, ..."""


def _is_categorical(values) -> bool:
    if isinstance(values, pd.Series):
        return not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) or isinstance(
            values.dtype, pd.CategoricalDtype)
    arr = np.asarray(values)
    return arr.dtype.kind in "OUSb"


class Columns:
    """Read-only, validated view of a DataFrame or a dict of arrays.

    Examples
    --------
    >>> cols = Columns({"x": [1.0, 2.0], "g": ["a", "b"]})
    >>> cols.numeric("x", "s(x)").tolist(), cols.factor("g", "re(g)")[1]
    ([1.0, 2.0], ['a', 'b'])
    """

    def __init__(self, data: pd.DataFrame | Mapping[str, object]):
        if isinstance(data, pd.DataFrame):
            self._frame = data
            names = list(data.columns)
        elif isinstance(data, Mapping):
            try:
                self._frame = pd.DataFrame({k: (v if isinstance(v, pd.Series) else np.asarray(v))
                                            for k, v in data.items()})
            except ValueError as exc:
                raise DataError(f"the columns of the data have different lengths: {exc}") from None
            names = list(self._frame.columns)
        else:
            raise DataError(f"data must be a pandas DataFrame or a dict of arrays, got {type(data).__name__}")
        self.names = [str(n) for n in names]
        self.n = len(self._frame)
        if self.n == 0:
            raise DataError("the data have no rows")

    @classmethod
    def view(cls, frame: pd.DataFrame) -> "Columns":
        """The same access over a DataFrame that may have no rows (a Dask partition, a schema)."""
        cols = cls.__new__(cls)
        cols._frame, cols.names, cols.n = frame, [str(c) for c in frame.columns], len(frame)
        return cols

    def _raw(self, name: str, term: str):
        if name not in self._frame.columns:
            import difflib

            close = difflib.get_close_matches(name, self.names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; available: {', '.join(self.names[:12])}"
            raise DataError(f"column {name!r} used by term {term} is not in the data{hint}")
        return self._frame[name]

    def is_factor(self, name: str, term: str) -> bool:
        return _is_categorical(self._raw(name, term))

    def numeric(self, name: str, term: str, allow_nan: bool = False) -> np.ndarray:
        raw = self._raw(name, term)
        if _is_categorical(raw) and not pd.api.types.is_bool_dtype(raw):
            bad = pd.to_numeric(raw, errors="coerce").isna() & raw.notna()
            example = raw[bad].iloc[0] if bad.any() else None
            raise DataError(f"column {name!r} in term {term} must be numeric; "
                            f"found {bad.sum()} non-numeric value(s), e.g. {example!r}")
        values = np.asarray(raw, dtype=float)
        if not allow_nan:
            bad = ~np.isfinite(values)
            if bad.any():
                raise DataError(f"column {name!r} in term {term} has {int(bad.sum())} NaN/inf value(s) "
                                f"(first at row {int(np.argmax(bad))}); clean them or pass na_action='drop'")
        return values

    def factor(self, name: str, term: str, levels: list | None = None) -> tuple[np.ndarray, list]:
        """Integer codes and levels; with ``levels`` given (prediction), unseen levels are an error."""
        raw = self._raw(name, term)
        if raw.isna().any():
            raise DataError(f"column {name!r} in term {term} has {int(raw.isna().sum())} missing value(s)")
        # hash the values once (O(n)), then work on the few distinct ones as strings
        first_codes, uniques = pd.factorize(raw, sort=False)
        names = np.asarray([str(u) for u in np.asarray(uniques)], dtype=object)
        if levels is None:
            if isinstance(raw.dtype, pd.CategoricalDtype):
                present = set(names)
                levels = [str(c) for c in raw.cat.categories if str(c) in present]
            else:
                levels = sorted(set(names))
            lookup = {lev: i for i, lev in enumerate(levels)}
            return np.array([lookup[v] for v in names], dtype=np.int64)[first_codes], levels
        lookup = {lev: i for i, lev in enumerate(levels)}
        mapped = np.array([lookup.get(v, -1) for v in names], dtype=np.int64)
        codes = mapped[first_codes]
        if (codes < 0).any():
            unseen = sorted(set(names[mapped < 0]))
            raise DataError(f"column {name!r} in term {term} has level(s) {unseen[:5]} not seen when fitting "
                            f"(known levels: {levels[:10]}{' ...' if len(levels) > 10 else ''})")
        return codes, levels

    def missing_rows(self, names: list[str]) -> np.ndarray:
        """Boolean mask of rows with NaN/inf/None in any of ``names``."""
        mask = np.zeros(self.n, dtype=bool)
        for name in names:
            raw = self._raw(name, "(model)")
            if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
                mask |= ~np.isfinite(np.asarray(raw, dtype=float))
            else:
                mask |= raw.isna().to_numpy()
        return mask

    def rows(self, rows: slice) -> pd.DataFrame:
        """A slice of rows as a DataFrame (for chunked prediction)."""
        return self._frame.iloc[rows]

    def subset(self, keep: np.ndarray) -> "Columns":
        return Columns(self._frame.loc[keep].reset_index(drop=True))
