"""Model.fit(method="nuts") against the LAML fit and R's mgcv 1.8-41 on the mgcv fixtures (tests/fixtures/mgcv).

Per fixture: wall seconds of both fits (NUTS includes its LAML start and JAX compilation), the largest
difference of the fitted means (NUTS posterior mean against LAML and against mgcv, in units of sd(y)),
the median and range over rows of the ratio of NUTS's posterior sd of the linear predictor to LAML's
Vp-based se, total edf (NUTS: diag(cov_post · I)), and NUTS diagnostics (largest R-hat, smallest ESS,
divergences, mean leapfrog steps).

    python benchmarks/bench_nuts.py                       # 2 chains x (500 warm-up + 500 draws)
    python benchmarks/bench_nuts.py --cases cyclic --warmup 200 --samples 200
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import structax as sx

FIX = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mgcv"
CASES = {
    "cyclic": ("y ~ s(x, bs='cc', k=12)", "normal", {}),
    "gam4_normal": ("y ~ s(x0) + s(x1) + s(x2) + s(x3)", "normal", {}),
    "gamma_log": ("y ~ s(x) + z", "gamma", {}),
    "binomial_smooth": ("y ~ s(x)", "bernoulli", {}),
    "poisson_te": ("y ~ te(x1, x2, k=6)", "poisson", {}),
    "random_intercept": ("y ~ x + re(g)", "normal", {}),
}


def row(name, args):
    ref = json.loads((FIX / f"{name}.json").read_text())
    data = pd.DataFrame(ref["data"])
    formula, family, extra = CASES[name]
    t0 = time.perf_counter()
    laml = sx.Model(formula, family=family, progress=False, **extra).fit(data)
    t_laml = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nuts = sx.Model(formula, family=family, progress=False, **extra).fit(
            data, method="nuts", num_warmup=args.warmup, num_samples=args.samples, chains=args.chains, seed=0,
            progress=False)
    t_nuts = time.perf_counter() - t0
    y = data[laml.response_]
    sd_y = float(np.std(y.astype(float)))
    mu_l, mu_n = laml.mean(data), nuts.mean(data)
    # linear predictor of the first parameter: LAML se from Vp, NUTS sd over the draws
    x = np.column_stack([t.block(nuts._split(data)[0]).dense() for k, t, sl in nuts._term_slices() if k == 0])
    cols = np.concatenate([np.arange(sl.start, sl.stop) for k, t, sl in nuts._term_slices() if k == 0])
    se_l = np.sqrt(np.einsum("ij,jk,ik->i", x, laml.cov_[np.ix_(cols, cols)], x))
    sd_n = (nuts.posterior_draws_["coef"][:, cols] @ x.T).std(0)
    ratio = sd_n / se_l
    i = nuts.nuts_info_
    return dict(case=name, n=len(data), t_laml=t_laml, t_nuts=t_nuts,
                d_laml=float(np.max(np.abs(mu_n - mu_l)) / sd_y),
                d_mgcv=float(np.max(np.abs(mu_n - np.asarray(ref["fitted"]))) / sd_y),
                d_laml_mgcv=float(np.max(np.abs(mu_l - np.asarray(ref["fitted"]))) / sd_y),
                ratio_med=float(np.median(ratio)), ratio_lo=float(ratio.min()), ratio_hi=float(ratio.max()),
                edf_laml=float(laml.edf_.sum()), edf_nuts=float(nuts.edf_.sum()), edf_mgcv=float(ref["edf_total"]),
                rhat=i["rhat_max"], ess=i["ess_min"], div=int(i["divergences"].sum()),
                steps=float(np.mean(i["mean_steps"])), noncentered=i["noncentered_terms"],
                warned=any("NUTS" in str(w.message) for w in caught))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    args = ap.parse_args()
    print(f"{args.chains} chains x ({args.warmup} warm-up + {args.samples} draws)")
    print("| fixture | n | LAML s | NUTS s | max |NUTS − LAML| / sd(y) | max |NUTS − mgcv| / sd(y) | "
          "(LAML − mgcv) | sd ratio NUTS/LAML (median, range) | edf LAML / NUTS / mgcv | max R-hat | min ESS | "
          "divergences | leapfrog steps | non-centred terms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.cases.split(","):
        r = row(name, args)
        print(f"| {r['case']} | {r['n']} | {r['t_laml']:.1f} | {r['t_nuts']:.1f} | {r['d_laml']:.4f} | {r['d_mgcv']:.4f} | "
              f"{r['d_laml_mgcv']:.4f} | {r['ratio_med']:.2f} ({r['ratio_lo']:.2f}–{r['ratio_hi']:.2f}) | "
              f"{r['edf_laml']:.2f} / {r['edf_nuts']:.2f} / {r['edf_mgcv']:.2f} | {r['rhat']:.3f} | {r['ess']:.0f} | "
              f"{r['div']} | {r['steps']:.0f} | {', '.join(r['noncentered']) or '–'} |", flush=True)


if __name__ == "__main__":
    main()
