"""Tests of structax.sciml.vmc: exact energies, antisymmetry, cusps, the sampler, blocking, SR, bad input, CLI."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import structax  # noqa: F401  (float64)
from structax.sciml.vmc import (Molecule, MoleculeError, NeuralWavefunction, VMCSettings, WavefunctionConfig, optimize, acceptance_probability,
                                blocking_analysis, init_walkers, make_local_energy, mh_sweeps, molecule,
                                parse_molecule, potential_energy, run_vmc, sr_direction)

# one small configuration shared by the H-atom run and the CLI test (same compiled kernels)
H_SMALL = dict(n_walkers=128, hidden=(8,), n_determinants=1, inference_steps=100)
SMALL_NET = WavefunctionConfig(hidden=(8,), pair_hidden=4, n_determinants=2)


# ---------------------------------------------------------------------------- energies
def test_h_atom_energy_short_run():
    res = run_vmc("H", steps=60, progress=False, **H_SMALL)
    assert abs(res.energy + 0.5) < 1e-3  # exact: -0.5 Ha
    assert 0 < res.energy_std_error < 1e-3
    assert len(res.train_trace) == 60 and len(res.inference_trace) == 100
    assert res.train_trace["acceptance"].between(0.2, 0.8).all()


def test_checkpoint_and_resume(tmp_path):
    wf = NeuralWavefunction(molecule("H"), WavefunctionConfig(hidden=(8,), n_determinants=1))
    settings = VMCSettings(steps=4, checkpoint_every=2, n_walkers=H_SMALL["n_walkers"], hidden=(8,),
                           n_determinants=1)
    folder = tmp_path / "new" / "run"
    state, trace = optimize(wf, settings, progress=False, checkpoint_dir=str(folder))
    assert (folder / "checkpoint.pkl").exists() and len(trace) == 4
    longer = VMCSettings(**{**settings.__dict__, "steps": 7})
    state2, trace2 = optimize(wf, longer, progress=False, checkpoint_dir=str(folder), resume=True)
    assert len(trace2) == 7 and int(state2.step) == 7
    np.testing.assert_array_equal(trace2["energy"][:4], trace["energy"])  # the first 4 steps are kept


@pytest.mark.parametrize("laplacian", ["folx", "hessian"])
def test_exact_hydrogen_ground_state_local_energy_is_constant(laplacian):
    if laplacian == "folx":
        pytest.importorskip("folx")
    e_loc = jax.jit(jax.vmap(make_local_energy(lambda p, r: -jnp.linalg.norm(r[0]), molecule("H"), laplacian),
                             (None, 0)))
    r = jax.random.normal(jax.random.key(0), (500, 1, 3)) * 2.0
    np.testing.assert_allclose(e_loc(None, r), -0.5, atol=1e-10)


def test_hydrogenic_he_plus_local_energy():
    # He+ ground state exp(-2r): E = -Z^2/2 = -2 exactly; also checks the nuclear charge enters V
    mol = Molecule(("He",), [[0.0, 0.0, 0.0]], charge=1)
    e_loc = jax.vmap(make_local_energy(lambda p, r: -2.0 * jnp.linalg.norm(r[0]), mol), (None, 0))
    r = jax.random.normal(jax.random.key(1), (50, 1, 3))
    np.testing.assert_allclose(e_loc(None, r), -2.0, atol=1e-10)


def test_folx_and_hessian_laplacians_agree():
    # a two-electron same-spin function with a 2x2 slogdet, as in the network (cheap to compile)
    pytest.importorskip("folx")
    mol = Molecule(("Li",), [[0.0, 0.0, 0.0]], charge=1, spin=2)
    centres = jnp.array([[0.0, 0.0, 0.0], [0.5, -0.2, 0.3]])

    def log_psi(p, r):
        d = jnp.sqrt(jnp.sum((r[:, None, :] - centres[None]) ** 2, -1) + 0.1)
        orb = jnp.exp(-p * d) * (1.0 + jnp.tanh(r @ centres.T))
        return jnp.linalg.slogdet(orb)[1] + 0.3 * jnp.sum(jnp.sin(r))

    r = jax.random.normal(jax.random.key(1), (16, 2, 3))
    a = jax.jit(jax.vmap(make_local_energy(log_psi, mol, "folx"), (None, 0)))(1.3, r)
    b = jax.jit(jax.vmap(make_local_energy(log_psi, mol, "hessian"), (None, 0)))(1.3, r)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_potential_energy_h2():
    mol = molecule("H2")
    r = jnp.array([[0.0, 0.5, -0.7], [0.0, 0.0, 1.7]])
    d = lambda a, b: float(np.linalg.norm(np.subtract(a, b)))  # noqa: E731
    na, nb = [0, 0, -0.7], [0, 0, 0.7]
    expected = (-1 / d(r[0], na) - 1 / d(r[0], nb) - 1 / d(r[1], na) - 1 / d(r[1], nb) + 1 / d(r[0], r[1]) + 1 / 1.4)
    assert float(potential_energy(r, mol.positions, mol.charges)) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------- wavefunction
@pytest.mark.parametrize("system,swaps", [("Li", [(0, 1)]), ("Be", [(0, 1), (2, 3)]), ("LiH", [(0, 1), (2, 3)])])
def test_antisymmetry_under_same_spin_exchange(system, swaps):
    wf = NeuralWavefunction(molecule(system), SMALL_NET)
    params = wf.init(jax.random.key(3))
    r = wf.init_walkers(jax.random.key(4), 8)
    signed = jax.jit(jax.vmap(wf.signed_log, (None, 0)))
    s0, l0 = signed(params, r)
    for i, j in swaps:
        perm = np.arange(wf.n_electrons)
        perm[[i, j]] = perm[[j, i]]
        s1, l1 = signed(params, r[:, perm])
        np.testing.assert_array_equal(np.asarray(s1), -np.asarray(s0))
        np.testing.assert_allclose(l1, l0, rtol=1e-12)


def test_cusps_are_exact():
    # the local energy of the network stays finite as an electron meets a nucleus or another electron,
    # while the potential diverges: the kinetic term cancels 1/r exactly (Kato cusp conditions)
    mol = molecule("He")
    wf = NeuralWavefunction(mol, SMALL_NET)
    params = wf.init(jax.random.key(5))
    e_loc = jax.jit(make_local_energy(wf.log_abs, mol, "hessian"))
    u = jnp.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])
    other = jnp.array([0.7, 0.4, -0.9])
    en = [float(e_loc(params, jnp.stack([eps * u, other]))) for eps in (1e-3, 1e-4, 1e-5)]
    ee = [float(e_loc(params, jnp.stack([other + eps * u, other]))) for eps in (1e-3, 1e-4, 1e-5)]
    # V changes by Z/eps ~ 2e5 between 1e-4 and 1e-5; E_L must not
    assert abs(en[2] - en[1]) < 0.05 and abs(en[1] - en[0]) < 0.5
    assert abs(ee[2] - ee[1]) < 0.05 and abs(ee[1] - ee[0]) < 0.5


# ---------------------------------------------------------------------------- sampler
def test_acceptance_rule_satisfies_detailed_balance():
    # pi(x) q(y|x) a(x,y) == pi(y) q(x|y) a(y,x) with a symmetric proposal, for arbitrary pairs
    rng = np.random.default_rng(0)
    lx, ly = rng.normal(size=1000) * 3, rng.normal(size=1000) * 3
    lhs = np.exp(lx) * np.asarray(acceptance_probability(lx, ly))
    rhs = np.exp(ly) * np.asarray(acceptance_probability(ly, lx))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_sampler_reproduces_hydrogen_density():
    # |psi|^2 = exp(-2r)/pi: the radius follows Gamma(3, scale 1/2); walkers are independent chains
    logp = lambda r: -2.0 * jnp.linalg.norm(r)  # noqa: E731
    state = init_walkers(jax.random.normal(jax.random.key(0), (4000, 3)) * 3, logp)
    state, acc = jax.jit(lambda k, s: mh_sweeps(k, s, logp, 0.8, 150))(jax.random.key(1), state)
    radius = np.linalg.norm(np.asarray(state.positions), axis=1)
    assert 0.3 < float(acc) < 0.8
    assert stats.kstest(radius, stats.gamma(3, scale=0.5).cdf).pvalue > 1e-3
    # and the direction is uniform: the mean of each coordinate is ~0
    assert np.all(np.abs(np.asarray(state.positions).mean(0)) < 5 * np.sqrt(1.0 / 4000))


# ---------------------------------------------------------------------------- statistics and SR
def test_blocking_recovers_ar1_standard_error():
    rng = np.random.default_rng(1)
    phi, n = 0.8, 2 ** 15
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = 0.0
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    res = blocking_analysis(x)
    true_se = np.sqrt((1 + phi) / (1 - phi) / (1 - phi ** 2) / n)
    assert res.level > 0
    assert abs(res.std_error / true_se - 1) < 0.2
    white = blocking_analysis(e)
    assert abs(white.std_error / (e.std() / np.sqrt(n)) - 1) < 0.05


@pytest.mark.parametrize("n,p", [(30, 80), (80, 30)])
def test_sr_direction_solves_damped_fisher_system(n, p):
    o = jax.random.normal(jax.random.key(0), (n, p))
    e = jax.random.normal(jax.random.key(1), (n,))
    exact = np.linalg.solve(np.asarray(o.T @ o) + 0.05 * np.eye(p), np.asarray(o.T @ e))
    np.testing.assert_allclose(sr_direction(o, e, 0.05, "direct"), exact, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sr_direction(o, e, 0.05, "cg", 500), exact, rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------------------- molecules and bad input
def test_presets_and_text_format():
    lih = molecule("LiH")
    assert lih.symbols == ("Li", "H") and lih.n_up == 2 and lih.n_down == 2
    assert np.allclose(lih.positions[1], [0, 0, 3.015])
    assert molecule("li").spin == 1 and molecule("Li").n_electrons == 3
    text = "units = angstrom\ncharge = 1\nH 0 0 0\nH 0 0 0.74"
    m = parse_molecule(text)
    assert m.n_electrons == 1 and m.positions[1, 2] == pytest.approx(0.74 / 0.529177210903)
    xyz = "2\nhydrogen molecule\nH 0 0 0\nH 0 0 0.74\n"
    assert np.allclose(parse_molecule(xyz).positions, m.positions)


@pytest.mark.parametrize("make,match", [
    (lambda: Molecule(("Xx",), [[0, 0, 0]]), "unknown element 'Xx'"),
    (lambda: parse_molecule("Qq 0 0 0"), "unknown element 'Qq'"),
    (lambda: Molecule(("He",), [[0, 0, 0]], spin=1), r"spin: n_up - n_down = 1 does not fit 2 electrons"),
    (lambda: Molecule(("H",), [[0, 0, 0]], spin=3), "does not fit 1 electrons"),
    (lambda: Molecule(("H", "H"), [[0, 0, 0], [0, np.nan, 1]]), r"non-finite coordinates for atom\(s\) \[1\]"),
    (lambda: Molecule(("H",), [[np.inf, 0, 0]]), "positions: non-finite"),
    (lambda: Molecule(("Li", "H"), [[0, 0, 1], [0, 0, 1]]), "atoms 0 \\(Li\\) and 1 \\(H\\) are at the same place"),
    (lambda: Molecule(("H",), [[0, 0]]), r"expected shape \(1, 3\)"),
    (lambda: Molecule(("H",), [[0, 0, 0]], charge=1), "leaves 0 electrons"),
    (lambda: parse_molecule("H 0 0"), "expected 'Symbol x y z'"),
    (lambda: molecule("Unobtainium"), "neither a preset"),
])
def test_bad_molecules_raise_clear_errors(make, match):
    with pytest.raises(MoleculeError, match=match):
        make()


@pytest.mark.parametrize("kw,match", [(dict(n_walkers=1), "n_walkers"), (dict(optimizer="kfac"), "optimizer"),
                                      (dict(laplacian="fd"), "laplacian"), (dict(learning_rate=-1), "learning_rate")])
def test_bad_settings_raise_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        VMCSettings(**kw)


def test_bad_laplacian_name():
    with pytest.raises(ValueError, match="laplacian: expected one of"):
        make_local_energy(lambda p, r: 0.0, molecule("H"), "finite-differences")


# ---------------------------------------------------------------------------- CLI
def test_cli_vmc_writes_trace_result_and_plot(tmp_path):
    from typer.testing import CliRunner

    from structax.cli import app

    out = tmp_path / "h"
    args = ["sciml", "vmc", "H", "--steps", "5", "--out", str(out), "--walkers", str(H_SMALL["n_walkers"]),
            "--inference-steps", str(H_SMALL["inference_steps"]), "--hidden", "8", "--determinants", "1", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "E = -0." in res.output and "±" in res.output
    summary = json.loads((out / "result.json").read_text())
    assert summary["steps"] == 5 and summary["energy_std_error"] > 0 and -0.6 < summary["energy"] < -0.3
    assert (out / "energy_trace.csv").read_text().startswith("step,energy")
    assert (out / "energy.png").stat().st_size > 1000
    bad = CliRunner().invoke(app, ["sciml", "vmc", "Xy", "--steps", "1", "--out", str(out), "--quiet"])
    assert bad.exit_code == 1 and "neither a preset" in bad.output
    bad = CliRunner().invoke(app, ["sciml", "vmc", "Be", "--pretrain", "casscf", "--active-space", "2", "--out",
                                   str(out), "--quiet"])
    assert bad.exit_code != 0 and "electrons,orbitals" in bad.output


def test_walkers_sharded_over_two_host_devices():
    """The same optimisation with the walkers split over 2 (simulated) devices gives the same energies."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import jax, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        import structax
        from structax.sciml.vmc import VMCSettings, NeuralWavefunction, molecule
        from structax.sciml.vmc import optimize
        assert len(jax.devices()) == 2
        settings = VMCSettings(steps=4, n_walkers=32, hidden=(8,), n_determinants=1, burn_in=10)
        wf = NeuralWavefunction(molecule("He"), settings.wavefunction_config)
        sharding = NamedSharding(Mesh(np.array(jax.devices()), ("walkers",)), P("walkers"))
        state, trace = optimize(wf, settings, progress=False, sharding=sharding)
        assert len(state.walkers.positions.sharding.device_set) == 2
        _, plain = optimize(wf, settings, progress=False)
        print(float(np.max(np.abs(trace["energy"].to_numpy() - plain["energy"].to_numpy()))))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) < 1e-6


# ---------------------------------------------------------------------------- Hartree–Fock pretraining
def test_unknown_pretrain_target_raises_a_clear_error():
    with pytest.raises(ValueError, match="pretrain: expected None, 'hf'.* or 'casscf'"):
        VMCSettings(pretrain="cisd")


@pytest.mark.parametrize("target", ["hf", "casscf"])
def test_missing_pyscf_says_how_to_install_it(monkeypatch, target):
    from structax.sciml.vmc import casscf, hartree_fock

    monkeypatch.setitem(__import__("sys").modules, "pyscf", None)  # as if PySCF were not installed
    with pytest.raises(ImportError, match=f"pretrain='{target}' needs PySCF.*pip install pyscf"):
        {"hf": hartree_fock, "casscf": casscf}[target](molecule("H2"))
    with pytest.raises(ImportError, match=f"pretrain='{target}' needs PySCF"):
        run_vmc("H2", pretrain=target, steps=1, progress=False)


def test_hartree_fock_orbitals_against_pyscf():
    pytest.importorskip("pyscf")
    from pyscf import gto, scf

    from structax.sciml.vmc import hartree_fock

    with pytest.raises(ValueError, match="basis: PySCF cannot build basis 'no-such-basis'"):
        hartree_fock(molecule("H2"), "no-such-basis")
    with pytest.raises(ValueError, match="method: expected"):
        hartree_fock(molecule("H2"), method="casscf")
    # H2 RHF/cc-pVDZ at 1.4 bohr: -1.128709 Ha (PySCF; cartesian and spherical cc-pVDZ agree for H, s and p only)
    assert abs(hartree_fock(molecule("H2"), "cc-pvdz").energy + 1.128709) < 2e-6
    # Li UHF/cc-pVDZ (cartesian d functions): our JAX orbitals against PySCF's AO values times MO coefficients
    hf = hartree_fock(molecule("Li"), "cc-pvdz")
    pmol = gto.M(atom="Li 0 0 0", unit="Bohr", basis="cc-pvdz", spin=1, cart=True, verbose=0)
    mf = scf.UHF(pmol)
    mf.kernel()
    assert abs(mf.e_tot - hf.energy) < 1e-8
    r = np.random.default_rng(3).normal(size=(3, 3)) * 1.2  # 2 up, 1 down electron
    ao = pmol.eval_gto("GTOval_cart", r)
    np.testing.assert_allclose(hf.atomic_orbitals(jnp.asarray(r)), ao, rtol=1e-10, atol=1e-14)
    up, down = hf.orbitals(jnp.asarray(r))
    ref_up, ref_down = ao[:2] @ mf.mo_coeff[0][:, :2], ao[2:] @ mf.mo_coeff[1][:, :1]
    # two separate SCF solutions: MO coefficients agree to about the square root of the convergence threshold
    np.testing.assert_allclose(up, ref_up, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(down, ref_down, rtol=1e-4, atol=1e-7)


def test_pretraining_fits_orbitals_and_lowers_the_starting_energy():
    pytest.importorskip("pyscf")
    from structax.sciml.vmc import hartree_fock, orbital_mismatch, pretrain_orbitals

    mol = molecule("Li")  # open shell: 2 up, 1 down electron
    wf = NeuralWavefunction(mol, WavefunctionConfig(hidden=(16,), pair_hidden=4, n_determinants=1))
    hf = hartree_fock(mol, "cc-pvdz")  # E_HF = -7.43243 Ha; exact -7.47806 Ha
    p0 = wf.init(jax.random.key(0))
    p1, walkers, trace = pretrain_orbitals(wf, p0, hf, jax.random.key(1), steps=150, n_walkers=128)
    assert walkers.shape == (128, 3, 3) and len(trace) == 150
    before, after = orbital_mismatch(wf, p0, hf, walkers), orbital_mismatch(wf, p1, hf, walkers)
    assert after < 0.25 * before  # measured: 0.58 -> 0.075
    np.testing.assert_array_equal(p1["jastrow"]["ee"], p0["jastrow"]["ee"])  # the Jastrow factor is kept

    e_loc = jax.vmap(make_local_energy(wf.log_abs, mol, "hessian"), (None, 0))

    @jax.jit
    def sample_energy(params, r, key):
        walkers = init_walkers(r, lambda x: 2.0 * wf.log_abs(params, x))
        walkers, _ = mh_sweeps(key, walkers, lambda x: 2.0 * wf.log_abs(params, x), 0.3, 200)
        return jnp.mean(e_loc(params, walkers.positions))

    keys = jax.random.split(jax.random.key(2), 4)
    start = [float(np.mean([sample_energy(p, r, k) for k in keys]))
             for p, r in ((p0, wf.init_walkers(jax.random.key(3), 128)), (p1, walkers))]
    # measured: about -6.7 Ha from random parameters, -7.3 to -7.4 Ha after pretraining (E_HF -7.432); the
    # mean local energy of 512 samples has heavy tails (walkers near nodes), hence the loose bound
    assert start[1] < start[0] - 0.3
    assert abs(start[1] - hf.energy) < 0.2


def test_run_vmc_with_pretraining_hydrogen_atom(tmp_path):
    pytest.importorskip("pyscf")
    from structax.sciml.vmc import save_result

    # one electron: no spin-down orbitals in either the network or the (UHF) Hartree–Fock determinant
    res = run_vmc("H", steps=5, pretrain="hf", pretrain_steps=20, pretrain_basis="sto-3g", progress=False,
                  **{**H_SMALL, "inference_steps": 20})
    assert len(res.pretrain_trace) == 20 and abs(res.hartree_fock_energy + 0.466582) < 1e-5  # STO-3G H atom
    s = save_result(res, str(tmp_path))
    assert s["pretrain"] == "hf" and s["pretrain_steps"] == 20 and (tmp_path / "pretrain_trace.csv").exists()
    assert abs(res.energy + 0.5) < 0.02


# ---------------------------------------------------------------------------- CASSCF pretraining
def test_casscf_bad_input_raises_clear_errors():
    from structax.sciml.vmc import casscf, default_active_space

    assert [default_active_space(molecule(m)) for m in ("H", "He", "Li", "Be", "H2", "LiH")] == \
        [(1, 1), (2, 1), (1, 4), (2, 4), (2, 2), (2, 5)]
    if __import__("importlib").util.find_spec("pyscf") is not None:
        with pytest.raises(ValueError, match="larger than the basis 'sto-3g' \\(2 functions"):
            casscf(molecule("H2"), "sto-3g", (2, 3))
        with pytest.raises(ValueError, match="3 active electrons do not fit"):
            casscf(molecule("Be"), "sto-3g", (3, 4))
        with pytest.raises(ValueError, match="active_space: expected"):
            casscf(molecule("Be"), "sto-3g", (2.5, 4))
        with pytest.raises(ValueError, match="cannot hold 2 spin-up"):
            casscf(molecule("Be"), "sto-3g", (4, 1))


def test_casscf_target_against_pyscf():
    pytest.importorskip("pyscf")
    from pyscf import gto, mcscf, scf

    from structax.sciml.vmc import casscf

    cas = casscf(molecule("Be"), "cc-pvdz")  # CAS(2,4): 2s and 2p above the 1s core
    pmol = gto.M(atom="Be 0 0 0", unit="Bohr", basis="cc-pvdz", cart=True, verbose=0)
    mc = mcscf.CASSCF(scf.RHF(pmol).run(), 4, 2)
    mc.verbose = 0
    mc.kernel()
    assert abs(cas.energy - mc.e_tot) < 1e-6 and cas.energy < cas.hartree_fock_energy - 0.04  # -14.6154 vs -14.5724
    # 2s² and the three 2p² configurations (the mixed ones vanish by symmetry), largest first
    np.testing.assert_allclose(np.abs(cas.ci), [0.9501, 0.1802, 0.1802, 0.1802], atol=2e-4)
    assert cas.ci[0] * cas.ci[1] < 0 and (cas.occ_up == cas.occ_down).all() and (cas.occ_up[:, 0] == 0).all()
    r = jnp.asarray(np.random.default_rng(4).normal(size=(4, 3)) * 1.5)
    # orbital values: our JAX basis times PySCF's CASSCF coefficients against PySCF's eval_gto
    ao = pmol.eval_gto("GTOval_cart", np.asarray(r))
    np.testing.assert_allclose(cas.molecular_orbitals(r), ao @ np.asarray(cas.coeff), rtol=1e-10, atol=1e-14)
    # the wavefunction is the CI-weighted sum of the determinants, antisymmetric in same-spin electrons
    dets = [jnp.linalg.det(m) for m in cas.determinants(r)]
    s, l = cas.signed_log(r)
    np.testing.assert_allclose(s * jnp.exp(l), jnp.sum(cas.ci * dets[0] * dets[1]), rtol=1e-10)
    for swap in ([1, 0, 2, 3], [0, 1, 3, 2]):
        s2, l2 = cas.signed_log(r[jnp.array(swap)])
        assert s2 == -s and abs(l2 - l) < 1e-10
    # pretraining targets: the CI weight folded into the spin-up matrix, so Σ_k Π_σ det T_k^σ = Ψ
    up, down = cas.target_matrices(r, 4)
    np.testing.assert_allclose(jnp.sum(jnp.linalg.det(up) * jnp.linalg.det(down)), s * jnp.exp(l), rtol=1e-10)
    # 6 network determinants: the 4 configurations, the first two used twice with half weight each
    index, weight = cas.assignment(6)
    np.testing.assert_array_equal(index, [0, 1, 2, 3, 0, 1])
    np.testing.assert_allclose(weight[[0, 4]], cas.ci[0] / 2)
    # 2 or 3 network determinants cannot hold the three-fold 2p² group: all get the 2s² determinant
    np.testing.assert_array_equal(cas.assignment(3)[0], [0, 0, 0])
    # LiH CAS(2,5): σ², σ*², a third σ-type pair, then the two π² configurations (equal weights)
    lih = casscf(molecule("LiH"), "cc-pvdz")
    assert lih.active_space == (2, 5) and lih.energy < lih.hartree_fock_energy - 0.02
    np.testing.assert_array_equal(lih.assignment(4)[0], [0, 1, 2, 0])
    np.testing.assert_array_equal(lih.assignment(5)[0], [0, 1, 2, 3, 4])


def test_casscf_energy_by_monte_carlo():
    """The mean local energy of the CASSCF wavefunction under |Ψ|² is PySCF's CASSCF energy."""
    pytest.importorskip("pyscf")
    from structax.sciml.vmc import adapt_step_size, casscf

    mol = Molecule(("H", "H"), [[0.0, 0.0, 0.0], [0.0, 0.0, 2.8]])  # stretched: strong static correlation
    cas = casscf(mol, "sto-3g")  # CAS(2,2) = full CI in STO-3G: -1.001125 Ha; RHF -0.916377 Ha
    assert abs(cas.energy + 1.001125) < 2e-6 and abs(cas.hartree_fock_energy + 0.916377) < 2e-6
    e_loc = jax.vmap(make_local_energy(lambda p, r: cas.log_abs(r), mol, "hessian"), (None, 0))
    logp = lambda x: 2.0 * cas.log_abs(x)  # noqa: E731

    @jax.jit
    def sweep(w, key, step_size, n: int = 5):
        w, acc = mh_sweeps(key, w, logp, step_size, n)
        return w, acc, jnp.mean(e_loc(None, w.positions))

    w = init_walkers(NeuralWavefunction(mol).init_walkers(jax.random.key(0), 512), logp)
    step_size = jnp.asarray(0.3)
    for k in jax.random.split(jax.random.key(1), 20):
        w, acc, _ = sweep(w, k, step_size)
        step_size = adapt_step_size(step_size, acc)
    energies = []
    for k in jax.random.split(jax.random.key(2), 60):
        w, _, e = sweep(w, k, step_size)
        energies.append(float(e))
    blk = blocking_analysis(np.array(energies))
    # measured: -1.0002 ± 0.0038 Ha. The Gaussian orbitals lack nuclear cusps, hence the large error bar;
    # a wrong relative sign of the two determinants would give about -0.85 Ha, above Hartree–Fock
    assert abs(blk.mean - cas.energy) < 4 * blk.std_error + 2e-3 and blk.std_error < 0.01


def test_run_vmc_with_casscf_pretraining():
    pytest.importorskip("pyscf")
    from structax.sciml.vmc import casscf, orbital_mismatch

    # pretraining only (no optimisation or inference steps): H2 with 2 determinants, fitted to σg² and σu²
    res = run_vmc("H2", steps=0, burn_in=0, inference_steps=0, pretrain="casscf", pretrain_steps=60,
                  pretrain_basis="sto-3g", progress=False, n_walkers=128, hidden=SMALL_NET.hidden,
                  pair_hidden=SMALL_NET.pair_hidden, n_determinants=SMALL_NET.n_determinants)
    s = res.summary()
    assert s["pretrain"] == "casscf" and s["active_space"] == [2, 2] and abs(s["casscf_energy"] + 1.137276) < 1e-5
    assert s["hartree_fock_energy"] > s["casscf_energy"] and len(res.pretrain_trace) == 60
    wf, cas = NeuralWavefunction(res.molecule, SMALL_NET), casscf(res.molecule, "sto-3g")
    p0 = wf.init(jax.random.split(jax.random.key(0), 4)[0])  # run_vmc's initial parameters (seed 0)
    r = res.walkers.positions
    before, after = orbital_mismatch(wf, p0, cas, r), orbital_mismatch(wf, res.params, cas, r)
    assert after < 0.3 * before  # measured: 3.25 -> 0.21
