"""Model summaries: parametric coefficient table and one row per penalized term (edf, λ, Wald test)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..smooth._block import crossprod

__all__ = ["Summary", "smooth_test"]


def smooth_test(coef: np.ndarray, cov: np.ndarray, edf: float,
                gram: np.ndarray | None = None) -> tuple[float, float, float]:
    """Wald test that a penalized term is zero (Wood 2013, rank-truncated, without its fractional-rank
    refinement).

    The test is done on the term's fitted values, not its coefficients: with ``gram = XᵀX = RᵀR`` of the
    term's columns the statistic uses ``Rβ`` and ``R V Rᵀ``, so it does not depend on how the term is
    parametrized. The covariance's pseudo-inverse is truncated to rank ``r = max(1, round(edf))``.
    Returns ``(statistic, r, p_value)``.
    """
    if gram is not None:
        ev_g, vec_g = np.linalg.eigh(0.5 * (gram + gram.T))
        root = (vec_g * np.sqrt(np.maximum(ev_g, 0.0))).T  # RᵀR = XᵀX
        coef, cov = root @ coef, root @ cov @ root.T
    ev, vec = np.linalg.eigh(0.5 * (cov + cov.T))
    order = np.argsort(ev)[::-1]
    rank = int(min(max(1, round(edf)), len(coef)))
    ev_r, vec_r = ev[order][:rank], vec[:, order][:, :rank]
    ev_r = np.maximum(ev_r, 1e-300)
    proj = vec_r.T @ coef
    statistic = float(np.sum(proj ** 2 / ev_r))
    return statistic, float(rank), float(stats.chi2.sf(statistic, rank))


@dataclass
class Summary:
    """What ``Model.summary()`` returns.

    Attributes
    ----------
    parametric : pandas.DataFrame
        One row per unpenalized coefficient: parameter, term, estimate, se, z, p_value.
    smooth : pandas.DataFrame
        One row per penalized term: parameter, term, edf, ref_df, lambda, chi2, p_value.
    info : dict
        family, n, log-likelihood, LAML score, total edf, AIC, iterations, seconds.
    deep : pandas.DataFrame
        One row per neural-network term: parameter, term, network, inputs, weights (parameter count of
        the network; a body shared by several parameters is listed under each), shared.
    """

    parametric: pd.DataFrame
    smooth: pd.DataFrame
    info: dict
    deep: pd.DataFrame = None

    @classmethod
    def from_model(cls, model) -> "Summary":
        par_rows, smooth_rows = [], []
        lam_by_cols = {}
        for pen, lam in zip(model.penalties_, model.lam_):
            lam_by_cols.setdefault(pen.cols.start, []).append(lam)
        for k, term, sl in model._term_slices():
            param = model.family_.params[k]
            coef = model.coef_[sl]
            cov = model.cov_[sl, sl]
            if term.kind == "parametric":
                se = np.sqrt(np.diag(cov))
                z = coef / se
                for name, b, s, zz in zip(term.coef_names, coef, se, z):
                    par_rows.append({"parameter": param, "term": name, "estimate": b, "se": s, "z": zz,
                                     "p_value": 2 * stats.norm.sf(abs(zz))})
            else:
                edf = float(model.edf_[sl].sum())
                block = term._train_block
                statistic, ref_df, p = smooth_test(coef, cov, edf, crossprod(block, block))
                lams = lam_by_cols.get(sl.start, [])
                smooth_rows.append({"parameter": param, "term": term.label, "edf": edf, "ref_df": ref_df,
                                    "lambda": lams[0] if len(lams) == 1 else tuple(lams),
                                    "chi2": statistic, "p_value": p})
        r = model.result_
        edf_total = float(model.edf_.sum())
        fit_info = getattr(model, "fit_info_", {})
        info = {"family": model.family_.name, "n": model.n_, "loglik": r.loglik, "laml": r.laml,
                "edf_total": edf_total, "aic": -2 * r.loglik + 2 * edf_total,
                "outer_iterations": r.outer_iterations, "inner_iterations": r.inner_iterations,
                "converged": bool(getattr(model, "converged_", r.converged)),
                "gradient_norm": r.info.gradient_norm, "step_failures": r.info.step_failures,
                "message": r.info.message, "problems": list(fit_info.get("problems", [])),
                "at_upper_bound": list(r.info.at_upper_bound),
                "seconds": model.fit_seconds_, "formulas": {p: f.text for p, f in model.formulas_.items()}}
        smooth = pd.DataFrame(smooth_rows, columns=["parameter", "term", "edf", "ref_df", "lambda", "chi2",
                                                    "p_value"])
        deep_rows = [{"parameter": label.split(": ", 1)[0], "term": label.split(": ", 1)[1], "network": repr(net.network),
                      "inputs": ", ".join(net.variables) + (f" {net.input_shape}" if net.kind == "array" else ""),
                      "weights": net.n_weights, "shared": len(net.params) > 1}
                     for net in getattr(model, "deep_networks_", []) for label in net.labels]
        deep = pd.DataFrame(deep_rows, columns=["parameter", "term", "network", "inputs", "weights", "shared"])
        training = fit_info.get("training")
        if training:
            info["training"] = training
        return cls(pd.DataFrame(par_rows), smooth, info, deep)

    def __str__(self) -> str:
        i = self.info
        lines = []
        if i["problems"]:  # an unusable fit must not read like a normal result
            lines += ["*** WARNING: this fit is NOT reliable ***"] + [f"  - {p}" for p in i["problems"]] + [""]
        lines.append(f"Family: {i['family']}    n = {i['n']}")
        lines += [f"  {p}: {f}" for p, f in i["formulas"].items()]
        lines.append("")
        lines.append("Parametric coefficients:")
        lines.append(self.parametric.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if len(self.smooth):
            lines.append("")
            lines.append("Penalized terms (approximate significance):")
            show = self.smooth.copy()
            show["lambda"] = [f"{v:.3g}" if np.isscalar(v) else ", ".join(f"{x:.3g}" for x in v)
                              for v in show["lambda"]]
            lines.append(show.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if self.deep is not None and len(self.deep):
            lines.append("")
            t = i.get("training", {})
            members = t.get("members", 1)
            lines.append("Deep terms (the structured terms above are estimated given them"
                         + (f"; ensemble of {members} members" if members > 1 else "") + "):")
            lines.append(self.deep.to_string(index=False))
            if t:
                lines.append(f"training: {t['epochs_run']} epochs, best epoch {t['best_epoch']}, stopped: "
                             f"{t['stopped']}, {t['seconds']:.1f} s; identifiability correction: "
                             f"{t['orthogonalize'] or 'none'}")
        lines.append("")
        lines.append(f"log-likelihood = {i['loglik']:.4f}   LAML = {i['laml']:.4f}   edf = {i['edf_total']:.2f}"
                     f"   AIC = {i['aic']:.2f}")
        lines.append(f"smoothing parameters: {i['outer_iterations']} outer / {i['inner_iterations']} inner "
                     f"iterations, {'converged' if i['converged'] else 'NOT converged'} ({i['message']}; "
                     f"LAML gradient {i['gradient_norm']:.2g}, {i['step_failures']} rejected steps); "
                     f"fit took {i['seconds']:.2f} s")
        if i["at_upper_bound"]:
            lines.append("shrunk to the penalty null space (λ at the upper end of its range): "
                         + ", ".join(i["at_upper_bound"]))
        return "\n".join(lines)

    __repr__ = __str__
