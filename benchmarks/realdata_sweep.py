"""structax against mgcv on real data: every case of ``tests/realdata.py`` × its three 90/10 splits.

For each case and split, structax's ``Model(**case.model_kwargs(), progress=False)`` is fitted on the
training rows in its own subprocess under a wall-clock limit (a hang or a crash is reported, not fatal),
and compared with mgcv's fit on the same rows (``tests/fixtures/mgcv_real/<case>.mgcv.json``, made by
``make_fixtures.R`` there). Cases with a scale/shape formula are also fitted with that parameter constant.

Columns: fit seconds (wall, and CPU in brackets), smallest edf over the smooth terms, total edf, mean test
NLL per row (``-m.distribution(test).log_prob(y)``), the constant-scale NLL, mgcv's test NLL (and its
constant-scale NLL: gaussian / Gamma(log) fitted by mgcv on the same rows), edf and seconds, the constant family parameters of both (structax: predicted value; mgcv: ``getTheta(TRUE)`` or the
scale), ``converged_`` and ``fit_info_`` problems, captured warnings, and the bars of issue 12 that the fit
misses (``time``: CPU time of the fit > 10 s, ``edf<0``, ``nll>mgcv+0.1``, ``nll>const+0.1``, ``nonfinite``, ``unconverged``).

Usage::

    .venv/bin/python benchmarks/realdata_sweep.py                       # everything (~20 cases x 3 splits)
    .venv/bin/python benchmarks/realdata_sweep.py --case boston_gaulss --case cps_lognormal --split 0
    .venv/bin/python benchmarks/realdata_sweep.py --timeout 60 --no-constant

Writes ``benchmarks/out/realdata_sweep.md`` and ``.json`` (``--out`` for another folder).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from realdata import CASES, load_case  # noqa: E402  (one list of cases for tests and this sweep)

TIME_BAR_S = 10.0     # issue 12: each fit <= 10 s for n <= 1000
NLL_MARGIN = 0.1      # issue 12: test NLL no worse than mgcv's / the constant-scale model's + 0.1


# ---------------------------------------------------------------------------------------------- worker
def _jsonable(x):
    """fit_info_ and friends as plain JSON (NumPy scalars/arrays, non-finite floats as strings)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else str(float(x))
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return repr(x)


def _edf_terms(m) -> dict:
    """edf of every penalized term, keyed 'param: term', from the model's summary."""
    table = m.summary().smooth
    return {f"{r.parameter}: {r.term}": float(r.edf) for r in table.itertuples()}


def _constant_params(m, case, test) -> dict:
    """Distribution parameters without a formula (estimated as constants): their fitted value."""
    pred = m.predict(test.iloc[:1])
    return {p: float(pred[p].iloc[0]) for p in pred.columns[1:] if p not in case.formulas}


def fit_one(name: str, seed: int, constant: bool) -> dict:
    """Fit one case on one training split in this process; everything that happens goes in the result."""
    import structax as sx

    case = CASES[name]
    data, splits, _ = load_case(name)
    split = next(s for s in splits if s["seed"] == seed)
    train, test = data.iloc[split["train"]].reset_index(drop=True), data.iloc[split["test"]].reset_index(drop=True)
    out = {"case": name, "seed": seed, "constant": constant, "n_train": len(train), "n_test": len(test)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = sx.Model(**case.model_kwargs(constant=constant), progress=False)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            m.fit(train)
            out["status"] = "ok"
        except Exception as exc:  # reported, not raised: the sweep goes on
            out.update(status="error", error=f"{type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc(limit=6))
        out["seconds"] = time.perf_counter() - wall
        out["cpu_seconds"] = time.process_time() - cpu
        if out["status"] == "ok":
            try:
                y_test = test[case.response].to_numpy(dtype=float)
                y_train = train[case.response].to_numpy(dtype=float)
                out["test_nll"] = float(-np.mean(np.asarray(m.distribution(test).log_prob(y_test))))
                out["train_nll"] = float(-np.mean(np.asarray(m.distribution(train).log_prob(y_train))))
                edf = np.asarray(m.edf_, dtype=float)
                out["edf_total"] = float(np.sum(edf))
                out["edf_terms"] = _edf_terms(m)
                out["edf_min"] = min(out["edf_terms"].values()) if out["edf_terms"] else None
                out["constant_params"] = _constant_params(m, case, test)
            except Exception as exc:
                out.update(status="error", error=f"after fit: {type(exc).__name__}: {exc}",
                           traceback=traceback.format_exc(limit=6))
            out["converged"] = _jsonable(getattr(m, "converged_", None))
            out["fit_info"] = _jsonable(getattr(m, "fit_info_", None))
    counts: dict[str, int] = {}
    for w in caught:
        key = f"{w.category.__name__}: {str(w.message)[:300]}"
        counts[key] = counts.get(key, 0) + 1
    out["warnings"] = [f"{k} (x{c})" if c > 1 else k for k, c in counts.items()]
    return _jsonable(out)


# ---------------------------------------------------------------------------------------------- parent
def engine_state() -> str:
    """The structax code a fit ran: HEAD's short hash, plus a hash of uncommitted changes under structax/."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        diff = git("diff", "HEAD", "--", "structax")
    except OSError:
        return "unknown"
    if not diff:
        return head
    import hashlib
    return f"{head}+dirty:{hashlib.sha1(diff.encode()).hexdigest()[:8]}"


def run_guarded(name: str, seed: int, constant: bool, timeout: float) -> dict:
    """fit_one in a fresh subprocess under a wall-clock limit; a time-out or a crash becomes a result."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(seed), str(int(constant)),
               str(path)]
        env = dict(os.environ)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"case": name, "seed": seed, "constant": constant, "status": "timeout",
                    "seconds": time.perf_counter() - start,
                    "error": f"no result after {timeout:g} s (process killed; import time included)"}
        if path.exists():
            return json.loads(path.read_text())
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        return {"case": name, "seed": seed, "constant": constant, "status": "crash",
                "seconds": time.perf_counter() - start,
                "error": f"worker exited {proc.returncode}: {' | '.join(tail)}"}


def _mgcv_split(mgcv: dict | None, seed: int) -> dict:
    if not mgcv:
        return {}
    return next((s for s in mgcv["splits"] if s.get("seed") == seed), {})


# mgcv's constant family parameters -> structax's names: density -> (name, function of theta, scale)
_MGCV_PARAMS = {
    "scat": [("df", lambda th, sc: th[0]), ("scale", lambda th, sc: th[1])],
    "nb": [("size", lambda th, sc: th[0])],
    "betar": [("precision", lambda th, sc: th[0])],
    "Gamma": [("shape", lambda th, sc: 1 / sc)],
    "inverse.gaussian": [("scale", lambda th, sc: sc)],
    "gaussian": [("scale", lambda th, sc: math.sqrt(sc))],
}


def _mgcv_params(ref: dict, density: str) -> str:
    """mgcv's constant family parameters in the structax parametrization, as text."""
    try:
        return " ".join(f"{name}={fn(ref.get('theta'), ref.get('scale')):.3g}"
                        for name, fn in _MGCV_PARAMS.get(density, []))
    except (TypeError, IndexError, ZeroDivisionError):
        return ""


def misses(row: dict) -> list[str]:
    """The bars of issue 12 that this fit misses."""
    if row["status"] != "ok":
        return [row["status"]]
    out = []
    nll = row.get("test_nll")
    if nll is None or not isinstance(nll, float) or not math.isfinite(nll):
        out.append("nonfinite")
    # CPU time of the fit process: on the shared 2-core machine the wall time is inflated by other jobs
    if row.get("n_train", 0) + row.get("n_test", 0) <= 1000 and row.get("cpu_seconds", 0) > TIME_BAR_S:
        out.append("time")
    if row.get("edf_min") is not None and row["edf_min"] < 0:
        out.append("edf<0")
    if isinstance(nll, float) and math.isfinite(nll):
        if row.get("mgcv_nll") is not None and nll > row["mgcv_nll"] + NLL_MARGIN:
            out.append("nll>mgcv+0.1")
        const = row.get("const_nll")
        if isinstance(const, float) and math.isfinite(const) and nll > const + NLL_MARGIN:
            out.append("nll>const+0.1")
    if row.get("converged") is False:
        out.append("unconverged")
    return out


def _fmt(x, spec=".3f") -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if not math.isfinite(x):
        return str(x)
    return format(x, ".3g") if abs(x) >= 1e4 else format(x, spec)


def markdown(rows: list[dict], header: str) -> str:
    cols = ["case", "split", "sx s (cpu)", "sx min edf", "sx edf", "sx NLL", "const NLL", "mgcv NLL", "mgcv const NLL", "mgcv edf",
            "mgcv s", "sx params", "mgcv params", "flags", "misses", "warnings", "engine"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        info = r.get("fit_info") or {}
        flags = []
        if r.get("converged") is not None:
            flags.append(f"converged_={r['converged']}")
        if isinstance(info, dict) and "outer_iterations" in info:
            flags.append(f"outer {info['outer_iterations']}, inner {info.get('inner_iterations')}")
        for p in (info.get("problems") or []) if isinstance(info, dict) else []:
            flags.append(str(p)[:120])
        if r.get("mgcv_flags"):
            flags.append("mgcv: " + r["mgcv_flags"])
        params = ", ".join(f"{k}={v:.3g}" for k, v in (r.get("constant_params") or {}).items())
        warn = "; ".join(w[:100] for w in (r.get("warnings") or []))
        if r["status"] != "ok":
            warn = f"{r.get('error', '')[:160]} {warn}".strip()
        cells = [r["case"], str(r["seed"]),
                 f"{_fmt(r.get('seconds'), '.1f')} ({_fmt(r.get('cpu_seconds'), '.1f')})",
                 _fmt(r.get("edf_min"), ".2f"), _fmt(r.get("edf_total"), ".1f"), _fmt(r.get("test_nll")),
                 _fmt(r.get("const_nll")), _fmt(r.get("mgcv_nll")), _fmt(r.get("mgcv_const_nll")),
                 _fmt(r.get("mgcv_edf"), ".1f"),
                 _fmt(r.get("mgcv_seconds"), ".1f"), params, r.get("mgcv_params", ""),
                 "; ".join(flags), ", ".join(r["misses"]) or "ok", warn, r.get("engine", "")]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    n_ok = sum(not r["misses"] for r in rows)
    lines += ["", f"{n_ok} of {len(rows)} fits meet every bar (CPU time <= {TIME_BAR_S:g} s for n <= 1000, "
              f"edf >= 0, finite test NLL <= mgcv + {NLL_MARGIN} and <= constant-scale + {NLL_MARGIN}, "
              "converged)."]
    return "\n".join(lines) + "\n"


def sweep(names: list[str], seeds: list[int], timeout: float, constant: bool, on_row=None) -> list[dict]:
    """Fit every case x seed (and the constant-scale version) under the time limit; ``on_row(rows)`` after each."""
    rows = []
    for name in names:
        case = CASES[name]
        _, _, mgcv = load_case(name)
        for seed in seeds:
            engine = engine_state()
            row = run_guarded(name, seed, False, timeout)
            row["engine"] = engine
            if constant and case.formulas:
                base = run_guarded(name, seed, True, timeout)
                row["const_nll"] = base.get("test_nll") if base["status"] == "ok" else base["status"]
                row["const_seconds"] = base.get("seconds")
            _add_mgcv(row, mgcv)
            rows.append(row)
            if on_row is not None:
                on_row(rows)
            print(f"{name:22s} {seed} {row['status']:7s} {_fmt(row.get('seconds'), '.1f'):>6s} s  "
                  f"NLL {_fmt(row.get('test_nll')):>8s}  const {_fmt(row.get('const_nll')):>8s}  "
                  f"mgcv {_fmt(row.get('mgcv_nll')):>8s}  edf {_fmt(row.get('edf_total'), '.1f'):>6s}/"
                  f"{_fmt(row.get('mgcv_edf'), '.1f'):>5s}  {', '.join(row['misses']) or 'ok'}", flush=True)
    return rows


def _add_mgcv(row: dict, mgcv: dict | None) -> None:
    """mgcv's numbers for the row's case and split (from the fixtures), then the bars it misses."""
    ref = _mgcv_split(mgcv, row["seed"])
    if ref.get("status") == "ok":
        row.update(mgcv_nll=ref["test_nll"], mgcv_edf=ref["edf_total"], mgcv_seconds=ref["seconds"],
                   mgcv_edf_terms=ref.get("edf_terms"), mgcv_params=_mgcv_params(ref, mgcv["density"]),
                   mgcv_const_nll=(ref.get("baseline") or {}).get("test_nll"))
        flags = [] if ref.get("outer_convergence") in (None, "full convergence") else \
            [str(ref["outer_convergence"])]
        flags += [w[:60] for w in ref.get("warnings") or []]
        row["mgcv_flags"] = "; ".join(flags)
    elif ref:
        row.update(mgcv_seconds=ref.get("seconds"), mgcv_flags=f"{ref.get('status')}: {ref.get('error', '')}")
    elif not CASES[row["case"]].mgcv_family:
        row["mgcv_flags"] = "no mgcv equivalent"
    else:
        row["mgcv_flags"] = "no mgcv fixture for this split yet"
    row["misses"] = misses(row)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", help="case name (repeatable, or comma-separated); default: all")
    ap.add_argument("--split", action="append", type=int, help="split seed 0, 1 or 2 (repeatable); default: all")
    ap.add_argument("--timeout", type=float, default=120.0, help="wall-clock limit per fit process, s (default 120)")
    ap.add_argument("--no-constant", action="store_true", help="skip the constant-scale/shape baseline fits")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out", help="folder for the .md and .json")
    ap.add_argument("--rerender", action="store_true",
                    help="no fits: re-read <out>/realdata_sweep.json, refresh mgcv's columns from the fixtures, "
                         "rewrite the tables")
    ap.add_argument("--update", action="store_true",
                    help="keep the rows of <out>/realdata_sweep.json that this run does not redo (re-run a few "
                         "cases and still get the whole table)")
    ap.add_argument("--worker", nargs=4, metavar=("CASE", "SEED", "CONSTANT", "RESULT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        name, seed, constant, path = args.worker
        Path(path).write_text(json.dumps(fit_one(name, int(seed), bool(int(constant)))))
        return

    if args.rerender:
        rows = json.loads((args.out / "realdata_sweep.json").read_text())
        for row in rows:
            _add_mgcv(row, load_case(row["case"])[2])
        header = (args.out / "realdata_sweep.md").read_text().split("\n\n| case")[0]
        print(_write(rows, header, args.out))
        return

    names = [n for c in (args.case or [",".join(CASES)]) for n in c.split(",") if n]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    seeds = args.split or [0, 1, 2]
    if any(s not in (0, 1, 2) for s in seeds):
        ap.error(f"--split takes 0, 1 or 2, got {seeds}")
    start = time.perf_counter()

    def header(rows):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        return (f"# structax vs mgcv on real data\n\n{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
                f"{len(rows)} fits in {time.perf_counter() - start:.0f} s, {os.cpu_count()} CPUs, load average "
                f"{load:.1f} at the end; per-fit limit {args.timeout:g} s (subprocess, import included). "
                "mgcv: tests/fixtures/mgcv_real (mgcv 1.8-41, method REML, same training rows).")

    kept = []
    if args.update and (args.out / "realdata_sweep.json").exists():
        redo = {(n, s) for n in names for s in seeds}
        kept = [r for r in json.loads((args.out / "realdata_sweep.json").read_text())
                if (r["case"], r["seed"]) not in redo]
        for row in kept:   # mgcv's numbers and the bars as they are now
            _add_mgcv(row, load_case(row["case"])[2])

    def merged(rows):
        order = {name: i for i, name in enumerate(CASES)}
        return sorted(kept + rows, key=lambda r: (order.get(r["case"], len(order)), r["seed"]))

    rows = sweep(names, seeds, args.timeout, not args.no_constant,
                 on_row=lambda rows: _write(merged(rows), header(merged(rows)), args.out))
    print(_write(merged(rows), header(merged(rows)), args.out))


def _write(rows: list[dict], header: str, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(rows, header)
    (out / "realdata_sweep.md").write_text(md)
    (out / "realdata_sweep.json").write_text(json.dumps(rows, indent=1))
    return md


if __name__ == "__main__":
    main()
