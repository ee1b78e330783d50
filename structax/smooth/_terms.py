"""Term construction: from a parsed term spec and data to a design block, penalties, an identifiability
constraint and the state needed to rebuild the block for new data (mgcv's ``smoothCon``/``PredictMat``).

Every term is a :class:`Term`: ``block(columns)`` gives its columns for any data with the stored knots,
levels and constraint; ``penalties`` are in the constrained parametrization. The fitter sees nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._bases import (bspline_basis, cyclic_bspline_basis, cyclic_difference_penalty, cyclic_knots,
                     difference_penalty, pspline_knots, row_tensor, tensor_penalties)
from ._block import Block, compress_codes, count_distinct, discretize

__all__ = ["Term", "build_terms", "sum_to_zero_basis"]


@dataclass
class Term:
    """One additive contribution to a linear predictor.

    Attributes
    ----------
    label : str
        Name shown in summaries, e.g. ``s(x)`` or ``s(x):fb`` for level ``b`` of a factor ``by``.
    coef_names : list of str
    penalties : list of ndarray
        Penalty matrices (p × p) in the constrained parametrization; empty for unpenalized terms.
    penalty_names : list of str
    fixed_sp : list of float or None
        Smoothing parameters fixed by the user (``sp=``), ``None`` where estimated.
    target_df : float or None
        ``df=``: the smoothing parameter is chosen to give this edf instead of REML.
    kind : str
        ``"parametric"``, ``"smooth"``, ``"tensor"``, ``"random"``, ``"ridge"``, ``"lasso"``.
    """

    label: str
    coef_names: list[str]
    kind: str
    make_block: object = field(repr=False)  # callable(columns) -> Block
    penalties: list[np.ndarray] = field(default_factory=list)
    penalty_names: list[str] = field(default_factory=list)
    fixed_sp: list = field(default_factory=list)
    target_df: float | None = None
    variables: tuple[str, ...] = ()
    plot_info: dict = field(default_factory=dict)
    reparam: np.ndarray | None = None  # extra constraint absorbed after construction (see absorb_constraint)

    @property
    def n_coef(self) -> int:
        return len(self.coef_names)

    def block(self, columns) -> Block:
        """The term's design block for (new) data, with training-time knots, levels and constraint."""
        block = self.make_block(columns)
        if self.reparam is not None:
            block = Block(block.basis @ self.reparam, block.index, block.by, block.constant_rows)
        return block

    def absorb_constraint(self, directions: np.ndarray) -> None:
        """Constrain the coefficients to be orthogonal to ``directions`` (p × d), e.g. to remove a null-space
        direction already spanned by another term; penalties and the training block follow."""
        q, _ = np.linalg.qr(directions, mode="complete")
        z = q[:, directions.shape[1]:]
        self.reparam = z if self.reparam is None else self.reparam @ z
        self.penalties = [z.T @ s @ z for s in self.penalties]
        self.coef_names = self.coef_names[: z.shape[1]]
        train = self._train_block
        self._train_block = Block(train.basis @ z, train.index, train.by, train.constant_rows)


def sum_to_zero_basis(col_sums: np.ndarray) -> np.ndarray:
    """Null space ``Z`` (p × (p-1)) of the constraint ``col_sumsᵀ β = 0``, by QR as in mgcv."""
    q, _ = np.linalg.qr(col_sums.reshape(-1, 1), mode="complete")
    return q[:, 1:]


def _scale_penalty(penalty: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Rescale so the penalty's 1-norm matches ``‖X‖∞²`` (mgcv does the same): smoothing parameters then
    live on a comparable scale for every term, which keeps the outer iteration well conditioned."""
    size = np.abs(basis).sum(axis=1).max() ** 2
    norm = np.abs(penalty).sum(axis=0).max()
    return penalty * (size / norm) if norm > 0 else penalty


def _distinct(values: np.ndarray, max_bins: int | None):
    """Distinct covariate values and the row index into them; with ``max_bins``, values are rounded onto
    an even grid of at most that many points first (discretization for large n, O(n) without a sort)."""
    return discretize(values, max_bins)


class _Marginal:
    """A one-covariate spline basis with its knots and penalty (P-spline or cyclic P-spline)."""

    def __init__(self, name: str, x: np.ndarray, k: int, bs: str, order: int, label: str):
        n_unique = count_distinct(x, at_least=max(k, 4))
        if n_unique < k and bs == "ps":
            raise ValueError(f"term {label}: k={k} basis functions but column {name!r} has only {n_unique} "
                             f"distinct value(s); use k <= {max(n_unique, 1)}")
        if n_unique < min(k, 4):
            raise ValueError(f"term {label}: column {name!r} has only {n_unique} distinct value(s)")
        self.name, self.k, self.bs = name, k, bs
        if bs == "cc":
            self.knots = cyclic_knots(x, k)
            self.penalty = cyclic_difference_penalty(k, order)
        else:
            self.knots = pspline_knots(x, k)
            self.penalty = difference_penalty(k, order)
        self.range = (float(np.min(x)), float(np.max(x)))

    def basis(self, x: np.ndarray) -> np.ndarray:
        return cyclic_bspline_basis(x, self.knots) if self.bs == "cc" else bspline_basis(x, self.knots)


def _constrained(basis_distinct, index, center):
    """Sum-to-zero constraint over all training rows, absorbed by QR (identity when not centred)."""
    if not center:
        return np.eye(basis_distinct.shape[1])
    return sum_to_zero_basis(np.bincount(index, minlength=basis_distinct.shape[0]) @ basis_distinct)


def _smooth_terms(spec, cols, max_bins):
    label = spec.label
    x = cols.numeric(spec.variable, label)
    margin = _Marginal(spec.variable, x, spec.k, spec.bs, spec.order, label)
    levels = [None]
    by_numeric = None
    if spec.by is not None:
        if cols.is_factor(spec.by, label):
            codes, levels = cols.factor(spec.by, label)
        else:
            by_numeric = cols.numeric(spec.by, label)
    terms = []
    for level_i, level in enumerate(levels):
        by_name = spec.by
        term_label = f"s({spec.variable})" + (f":{by_name}{level}" if level is not None else
                                              (f":{by_name}" if by_name else ""))

        def by_values(c, level_i=level_i, level=level):
            if level is not None:
                codes_now, _ = c.factor(by_name, term_label, levels)
                return (codes_now == level_i).astype(float)
            return c.numeric(by_name, term_label) if by_name else None

        values, index = _distinct(x, max_bins)
        by = by_values(cols)
        raw_basis = margin.basis(values)
        # a numeric by= makes the smooth identifiable on its own (mgcv leaves it unconstrained); each
        # level of a factor by= is centred over all rows, as mgcv does, so coefficients compare with it
        z = _constrained(raw_basis, index, center=by_numeric is None)
        basis = raw_basis @ z
        penalty = _scale_penalty(z.T @ margin.penalty @ z, basis)

        def make_block(c, margin=margin, z=z, by_values=by_values):
            xv = c.numeric(spec.variable, term_label)
            vals, idx = _distinct(xv, None)
            return Block(margin.basis(vals) @ z, idx, by_values(c))

        terms.append(Term(term_label, [f"{term_label}.{j + 1}" for j in range(basis.shape[1])], "smooth",
                          make_block, [penalty], [term_label], [spec.sp], spec.df,
                          (spec.variable,) + ((by_name,) if by_name else ()),
                          {"margins": [margin], "z": z, "by_level": level, "by": by_name}))
        terms[-1]._train_block = Block(basis, index, by)
    return terms


def _tensor_terms(spec, cols, max_bins):
    label = spec.label
    xs = [cols.numeric(v, label) for v in spec.variables]
    margins = [_Marginal(v, x, k, bs, 2, label) for v, x, k, bs in zip(spec.variables, xs, spec.k, spec.bs)]
    # joint distinct values from per-margin codes; binning per margin keeps the joint table small
    bins = None if max_bins is None else max(10, int(round(max_bins ** (1.0 / len(xs)) * 3)))

    def joint(values_list, max_b):
        codes, distincts = [], []
        for v in values_list:
            d, i = _distinct(v, max_b)
            distincts.append(d)
            codes.append(i.astype(np.int64))
        combined = codes[0]
        for d, c in zip(distincts[1:], codes[1:]):
            combined = combined * len(d) + c
        used, index = compress_codes(combined, int(np.prod([len(d) for d in distincts])))
        per_margin = []
        rest = used
        for d in reversed(distincts[1:]):
            per_margin.append(d[rest % len(d)])
            rest = rest // len(d)
        per_margin.append(distincts[0][rest])
        return per_margin[::-1], index.astype(np.int32)

    marg_z = []
    for m, x in zip(margins, xs):
        if spec.interaction_only:
            vals, idx = _distinct(x, max_bins)
            marg_z.append(sum_to_zero_basis(np.bincount(idx, minlength=len(vals)) @ m.basis(vals)))
        else:
            marg_z.append(np.eye(m.k))
    # mgcv's "normal parametrization" (te(np=TRUE)): marginal coefficients become function values at
    # evenly spaced points, so the identity factors in the tensor penalties act on function values
    for i, (m, x) in enumerate(zip(margins, xs)):
        grid = np.linspace(m.range[0], m.range[1], marg_z[i].shape[1])
        values_at_grid = m.basis(grid) @ marg_z[i]
        if np.linalg.cond(values_at_grid) < 1e10:
            marg_z[i] = marg_z[i] @ np.linalg.inv(values_at_grid)
    by = cols.numeric(spec.by, label) if spec.by else None

    def tensor_basis(values_list):
        return row_tensor(*[m.basis(v) @ z for m, v, z in zip(margins, values_list, marg_z)])

    values, index = joint(xs, bins)
    raw = tensor_basis(values)
    if spec.interaction_only or by is not None:
        z = np.eye(raw.shape[1])
    else:
        z = sum_to_zero_basis(np.bincount(index, minlength=raw.shape[0]) @ raw)
    basis = raw @ z
    penalties = [_scale_penalty(z.T @ s @ z, basis)
                 for s in tensor_penalties([zm.T @ m.penalty @ zm for m, zm in zip(margins, marg_z)])]

    def make_block(c):
        vs = [c.numeric(v, label) for v in spec.variables]
        vals, idx = joint(vs, None)
        return Block(tensor_basis(vals) @ z, idx, c.numeric(spec.by, label) if spec.by else None)

    names = [f"{label}[{v}]" for v in spec.variables]
    sp = list(spec.sp) if spec.sp is not None else [None] * len(margins)
    term = Term(label, [f"{label}.{j + 1}" for j in range(basis.shape[1])], "tensor", make_block, penalties,
                names, sp, spec.df, spec.variables + ((spec.by,) if spec.by else ()),
                {"margins": margins, "z": z, "marg_z": marg_z, "basis_fn": tensor_basis})
    term._train_block = Block(basis, index, by)
    return [term]


def _random_terms(spec, cols):
    label = spec.label
    codes, levels = cols.factor(spec.group, label)
    n_levels = len(levels)

    def make_block(c):
        # a level not seen in fitting gets the population-level prediction (random effect 0)
        raw = c._raw(spec.group, label).astype(str).to_numpy()
        lookup = {lev: i for i, lev in enumerate(levels)}
        idx = np.fromiter((lookup.get(v, n_levels) for v in raw), dtype=np.int32, count=len(raw))
        basis = np.vstack([np.eye(n_levels), np.zeros((1, n_levels))])
        return Block(basis, idx, c.numeric(spec.slope, label) if spec.slope else None)

    by = cols.numeric(spec.slope, label) if spec.slope else None
    term = Term(label, [f"{label}[{lev}]" for lev in levels], "random", make_block, [np.eye(n_levels)], [label],
                [spec.sp], None, (spec.group,) + ((spec.slope,) if spec.slope else ()), {"levels": levels})
    term._train_block = Block(np.eye(n_levels), codes.astype(np.int32), by)
    return [term]


def _penalized_linear_terms(spec, cols):
    label = spec.label
    xs = np.column_stack([cols.numeric(v, label) for v in spec.variables])
    sd = xs.std(axis=0)
    for name, s in zip(spec.variables, sd):
        if s == 0:
            raise ValueError(f"term {label}: column {name!r} is constant")
    # penalizing sd_j² b_j² is ridge on standardized covariates while coefficients stay per unit of x
    penalty = np.diag(sd ** 2)

    def make_block(c):
        return Block(np.column_stack([c.numeric(v, label) for v in spec.variables]))

    term = Term(label, [f"{label}[{v}]" for v in spec.variables], spec.kind, make_block, [penalty], [label],
                [spec.sp], None, spec.variables, {"sd": sd})
    term._train_block = Block(xs)
    return [term]


def build_terms(spec, cols, max_bins: int | None = None) -> list[Term]:
    """Terms (with their training-data blocks in ``term._train_block``) for one penalized term spec.

    Parameters
    ----------
    spec : Smooth, Tensor, RandomEffect or PenalizedLinear
        From :func:`structax.regression.parse_formula`.
    cols : structax.regression.Columns
        Validated data access.
    max_bins : int, optional
        Discretize each smooth covariate onto at most this many values (large data).
    """
    from ..regression._formula import PenalizedLinear, RandomEffect, Smooth, Tensor

    try:
        if isinstance(spec, Smooth):
            return _smooth_terms(spec, cols, max_bins)
        if isinstance(spec, Tensor):
            return _tensor_terms(spec, cols, max_bins)
        if isinstance(spec, RandomEffect):
            return _random_terms(spec, cols)
        if isinstance(spec, PenalizedLinear):
            return _penalized_linear_terms(spec, cols)
    except ValueError as exc:
        if type(exc) is ValueError:
            from ..regression._data import DataError

            raise DataError(str(exc)) from None
        raise
    raise TypeError(f"not a penalized term spec: {spec!r}")
