"""Design building: parsed formula + data -> one :class:`PredictorDesign` per distribution parameter,
holding its terms (parametric columns first, then penalized terms) and offsets. The state learned here
(knots, levels, constraints) is what ``predict`` reuses on new data."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..smooth._block import Block, GramPlan, compress_codes
from ..smooth._terms import Term, build_terms
from ._data import Columns, DataError
from ._formula import Deep, Formula, Linear, Offset

__all__ = ["PredictorDesign", "build_design"]


@dataclass
class PredictorDesign:
    """Terms and offsets of one distribution parameter's linear predictor."""

    param: str
    formula: Formula
    terms: list[Term]
    offsets: list[str] = field(default_factory=list)

    @property
    def n_coef(self) -> int:
        return sum(t.n_coef for t in self.terms)

    def blocks(self, cols: Columns) -> list[Block]:
        return [t.block(cols) for t in self.terms]

    def offset(self, cols: Columns) -> np.ndarray:
        out = np.zeros(cols.n)
        for name in self.offsets:
            out += cols.numeric(name, f"offset({name})")
        return out


def starts_with_intercept(term: Term) -> bool:
    """The term is a parameter's parametric block and its first column is the intercept."""
    return term.kind == "parametric" and bool(term.coef_names) and term.coef_names[0] == "(Intercept)"


def _parametric_term(formula: Formula, cols: Columns) -> Term | None:
    """All unpenalized columns (intercept, numeric, treatment-coded factors, interactions) as one term."""
    linear = [t for t in formula.terms if isinstance(t, Linear)]
    main_numeric = {t.variables[0] for t in linear if len(t.variables) == 1 and not cols.is_factor(t.variables[0], t.label)}
    specs = []  # (label, [(variable, is_factor, levels, drop_first)])
    first_factor_full = not formula.intercept
    for t in linear:
        parts = []
        for v in t.variables:
            if cols.is_factor(v, t.label):
                _, levels = cols.factor(v, t.label)
                if len(levels) < 2 and len(t.variables) == 1:
                    raise DataError(f"factor {v!r} in term {t.label} has a single level ({levels[0]!r}); "
                                    "it carries no information")
                # without an intercept the first factor keeps all levels (cell means); a factor:numeric
                # interaction keeps all levels when the numeric has no main effect (one slope per level)
                others_numeric_absent = len(t.variables) > 1 and all(
                    not cols.is_factor(u, t.label) and u not in main_numeric for u in t.variables if u != v)
                drop = not (first_factor_full or others_numeric_absent)
                if len(t.variables) == 1 and first_factor_full:
                    first_factor_full = False
                parts.append((v, True, levels, drop))
            else:
                parts.append((v, False, None, False))
        specs.append((t.label, parts))
    if not formula.intercept and not specs:
        return None

    def columns(c: Columns):
        cols_out, names = [], []
        if formula.intercept:
            cols_out.append(np.ones(c.n))
            names.append("(Intercept)")
        for label, parts in specs:
            block_cols, block_names = [np.ones(c.n)], [""]
            for v, is_factor, levels, drop in parts:
                if is_factor:
                    codes, _ = c.factor(v, label, levels)
                    keep = levels[1:] if drop else levels
                    start = 1 if drop else 0
                    dummies = [(codes == i + start).astype(float) for i in range(len(keep))]
                    dnames = [f"{v}{lev}" for lev in keep]
                else:
                    dummies, dnames = [c.numeric(v, label)], [v]
                block_cols = [a * b for a in block_cols for b in dummies]
                block_names = [f"{a}:{b}" if a else b for a in block_names for b in dnames]
            cols_out += block_cols
            names += block_names
        return np.column_stack(cols_out), names

    if not specs:  # intercept only: one row shared by all observations
        term = Term("(parametric)", ["(Intercept)"], "parametric",
                    lambda c: Block(np.ones((1, 1)), constant_rows=c.n))
        term._train_block = Block(np.ones((1, 1)), constant_rows=cols.n)
        return term
    if all(is_factor for _, parts in specs for _, is_factor, *_ in parts):
        train, names = _factor_rows_block(cols, specs, columns)
    else:
        matrix, names = columns(cols)
        train = Block(matrix)
    term = Term("(parametric)", names, "parametric", lambda c: Block(columns(c)[0]),
                variables=tuple(v for _, parts in specs for v, *_ in parts))
    term._train_block = train
    return term


def _factor_rows_block(cols: Columns, specs, columns) -> tuple[Block, list[str]]:
    """Parametric columns made of factors only have one row per combination of levels: store those rows
    once with an index per observation (an indexed block, so cross products are small count tables)."""
    variables = list(dict.fromkeys(v for _, parts in specs for v, *_ in parts))
    joint, size, all_levels = np.zeros(cols.n, dtype=np.int64), 1, []
    for v in variables:
        codes, levels = cols.factor(v, "(parametric)")
        joint = joint * len(levels) + codes
        size *= len(levels)
        all_levels.append(levels)
    used, index = compress_codes(joint, size if size < 2**62 else None)
    rest, distinct = used, {}
    for v, levels in zip(reversed(variables), reversed(all_levels)):
        distinct[v] = np.asarray(levels, dtype=object)[rest % len(levels)]
        rest = rest // len(levels)
    basis, names = columns(Columns(pd.DataFrame({v: distinct[v] for v in variables})))
    return Block(basis, index), names


def build_design(param: str, formula: Formula, cols: Columns, max_bins: int | None) -> PredictorDesign:
    """Build the terms of one linear predictor on training data (blocks in ``term._train_block``)."""
    terms: list[Term] = []
    parametric = _parametric_term(formula, cols)
    if parametric is not None:
        terms.append(parametric)
    offsets = []
    for spec in formula.terms:
        if isinstance(spec, (Linear, Deep)):  # deep terms: see structax.regression._deep
            continue
        if isinstance(spec, Offset):
            cols.numeric(spec.variable, spec.label)
            offsets.append(spec.variable)
            continue
        terms.extend(build_terms(spec, cols, max_bins))
    if not terms:
        raise DataError(f"the formula for {param!r} has no terms (and no intercept): {formula.text!r}")
    design = PredictorDesign(param, formula, terms, offsets)
    _check_rank(design, param)
    _remove_aliased_null_spaces(design)
    return design


def _remove_aliased_null_spaces(design: PredictorDesign) -> None:
    """Unpenalized directions of a penalized term (e.g. the linear part of ``s(x)``) that the parametric
    columns or earlier terms already span would make the model unidentifiable; constrain them away, as
    mgcv's ``gam.side`` does for nested terms (``y ~ x + s(x)``, ``s(x) + te(x, z)``).

    Everything is computed from cross products of the indexed blocks (small tables, never an n-row
    least-squares problem): the residual of the term's null-space columns N after projection on the
    spanned columns A has Gram matrix ``NᵀN − NᵀA (AᵀA)⁺ AᵀN``."""
    spanned = [t._train_block for t in design.terms if t.kind == "parametric"]
    gram = GramPlan(spanned).gram(list(range(len(spanned))), list(range(len(spanned))), None) \
        if spanned else np.zeros((0, 0))
    for term in design.terms:
        if not term.penalties:
            continue
        total = sum(s / np.abs(s).max() for s in term.penalties)
        ev, vec = np.linalg.eigh(total)
        null = vec[:, ev < 1e-9 * ev.max()]
        if null.shape[1] == 0:
            continue
        train = term._train_block
        columns = Block(train.basis @ null, train.index, train.by, train.constant_rows)
        plan = GramPlan(spanned + [columns])
        last = len(spanned)
        nn = plan.pair(last, last, None)
        if spanned:
            an = plan.gram(list(range(last)), [last], None)
            resid = nn - an.T @ _pinv_psd(gram) @ an
        else:
            an, resid = np.zeros((0, nn.shape[0])), nn
        r_ev, r_vec = np.linalg.eigh(0.5 * (resid + resid.T))
        aliased = r_ev < 1e-8 * max(float(np.trace(nn)), 1e-300)
        if aliased.any():
            term.absorb_constraint(null @ r_vec[:, aliased])
        keep = r_vec[:, ~aliased]
        if keep.shape[1]:
            spanned.append(Block(columns.basis @ keep, train.index, train.by, train.constant_rows))
            cross = an @ keep
            gram = np.block([[gram, cross], [cross.T, keep.T @ nn @ keep]])


def _pinv_psd(gram: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of a positive semi-definite Gram matrix, scaled to unit diagonal first."""
    d = np.sqrt(np.maximum(np.diag(gram), 1e-300))
    ev, vec = np.linalg.eigh(gram / d[:, None] / d[None, :])
    keep = ev > 1e-12 * max(ev.max(), 1e-300)
    return ((vec[:, keep] / ev[keep]) @ vec[:, keep].T) / d[:, None] / d[None, :]


def _check_rank(design: PredictorDesign, param: str) -> None:
    """Unpenalized columns must be estimable on their own: catch aliased columns with a clear message."""
    term = design.terms[0]
    if term.kind != "parametric":
        return
    if term._train_block.is_constant:
        return
    gram = GramPlan([term._train_block]).pair(0, 0, None)
    scale = np.sqrt(np.maximum(np.diag(gram), 1e-300))
    corr = gram / scale[:, None] / scale[None, :]
    eig, vec = np.linalg.eigh(corr)
    if eig[0] < 1e-10 * max(eig[-1], 1.0):
        culprit = [term.coef_names[i] for i in np.argsort(-np.abs(vec[:, 0]))[:2]]
        raise DataError(f"parametric columns of {param!r} are linearly dependent (e.g. {culprit}); "
                        "remove one of them or drop the intercept")
