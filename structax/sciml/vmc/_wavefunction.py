"""A neural wavefunction: determinants of equivariant neural orbitals × a cusp-correct Jastrow factor.

ψ(r) = exp(J(r)) Σ_k det[φ_k^↑(r_i^↑; {r})] det[φ_k^↓(r_i^↓; {r})]

* Features (FermiNet-like): electron–nucleus vectors d and distances, electron–electron vectors and
  distances, all through smooth maps (``d / (1 + r)``, ``log(1 + r²)``) that have no term linear in r,
  so the network part is cusp-free and the cusps are set exactly by the Jastrow factor.
* A permutation-equivariant embedding: one-electron streams mixed with the spin-resolved means of the
  one- and two-electron streams (FermiNet, Pfau et al. 2020); residual tanh layers.
* Orbitals: a linear map of the embedding times an exponential envelope Σ_I π exp(−σ r_I²/(1 + r_I)),
  smooth at the nuclei and decaying as exp(−σ r) far away.
* Jastrow: J = −Σ_{iI} Z_I r_iI / (1 + c_I r_iI) + Σ_{i<j} a_ij r_ij / (1 + b r_ij), with a = 1/2 for
  opposite and 1/4 for parallel spins: the Kato cusp conditions hold exactly for any parameters.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._molecule import Molecule

__all__ = ["NeuralWavefunction", "WavefunctionConfig"]


class WavefunctionConfig(NamedTuple):
    """Sizes of the network: one-electron widths per layer, pair width, number of determinants."""

    hidden: tuple[int, ...] = (32, 32)
    pair_hidden: int = 8
    n_determinants: int = 4


def _softplus_inv(y):
    return float(np.log(np.expm1(y)))


def _pair_features(x):
    """Smooth features of difference vectors x (..., 3): x/(1+r) and log(1+r²)."""
    r2 = jnp.sum(x * x, axis=-1, keepdims=True)
    r = jnp.sqrt(r2)
    return jnp.concatenate([x / (1.0 + r), jnp.log1p(r2)], axis=-1)


class NeuralWavefunction:
    """A FermiNet/PauliNet-style wavefunction for a :class:`Molecule`, as pure functions of (params, r).

    Parameters
    ----------
    molecule : Molecule
    config : WavefunctionConfig, optional

    Notes
    -----
    ``init(key)`` returns the parameter pytree; ``log_abs(params, r)`` returns log|ψ| and
    ``signed_log(params, r)`` returns (sign ψ, log|ψ|) for electron positions ``r`` of shape
    ``(n_electrons, 3)`` in bohr, spin-up electrons first. Both are jit- and vmap-able.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structax.sciml.vmc import NeuralWavefunction, WavefunctionConfig, molecule
    >>> wf = NeuralWavefunction(molecule("Li"), WavefunctionConfig(hidden=(8,), n_determinants=2))
    >>> params = wf.init(jax.random.key(0))
    >>> r = jax.random.normal(jax.random.key(1), (3, 3))
    >>> signed = jax.jit(wf.signed_log)
    >>> s1, l1 = signed(params, r)
    >>> s2, l2 = signed(params, r[jnp.array([1, 0, 2])])   # swap the two spin-up electrons
    >>> bool(s1 == -s2), bool(jnp.allclose(l1, l2))
    (True, True)
    """

    def __init__(self, molecule: Molecule, config: WavefunctionConfig | None = None):
        self.molecule = molecule
        self.config = WavefunctionConfig() if config is None else WavefunctionConfig(*config)
        self.n_up, self.n_down = molecule.n_up, molecule.n_down
        self.n_electrons = molecule.n_electrons
        self._nuclei = np.asarray(molecule.positions)
        self._charges = np.asarray(molecule.charges)
        n = self.n_electrons
        spins = np.array([1] * self.n_up + [0] * self.n_down)
        off = 1.0 - np.eye(n)
        up, dn = off * (spins[None] == 1), off * (spins[None] == 0)
        # row-normalised "mean over the other electrons of each spin" (zero rows when there are none)
        self._mean_up_pair = up / np.maximum(up.sum(1, keepdims=True), 1)
        self._mean_dn_pair = dn / np.maximum(dn.sum(1, keepdims=True), 1)
        same = spins[:, None] == spins[None, :]
        iu = np.triu_indices(n, 1)
        self._iu = iu
        self._cusp_a = np.where(same[iu], 0.25, 0.5)

    # ------------------------------------------------------------------ parameters
    def init(self, key: jax.Array) -> dict:
        """Random parameters (a dict pytree of float64 arrays)."""
        cfg, n_atoms = self.config, len(self._charges)
        widths = (4 * n_atoms,) + tuple(cfg.hidden)
        keys = iter(jax.random.split(key, 4 * len(widths) + 8))

        def dense(k, n_in, n_out, scale=1.0):
            return {"w": scale * jax.random.normal(k, (n_in, n_out)) / np.sqrt(n_in), "b": jnp.zeros(n_out)}

        layers, pair_in = [], 4
        for l in range(len(cfg.hidden)):
            n_in = 3 * widths[l] + 2 * pair_in
            layers.append({"one": dense(next(keys), n_in, widths[l + 1]),
                           "two": dense(next(keys), pair_in, cfg.pair_hidden)})
            pair_in = cfg.pair_hidden
        h_last, k_det = widths[-1], cfg.n_determinants
        orbitals = {}
        for name, n_spin in (("up", self.n_up), ("down", self.n_down)):
            if n_spin == 0:
                continue
            m = k_det * n_spin
            # decay rates Z/(index+1) per orbital index: distinct orbitals from the start (1s, 2s, ...)
            idx = np.tile(np.arange(n_spin), k_det)
            sigma = np.maximum(self._charges[None, :] / (idx[:, None] + 1.0), 0.5)
            orbitals[name] = {"w": 0.1 * jax.random.normal(next(keys), (h_last, m)) / np.sqrt(h_last),
                              "b": jnp.ones(m) + 0.1 * jax.random.normal(next(keys), (m,)),
                              "pi": jnp.ones((m, n_atoms)),
                              "sigma": jnp.asarray(np.log(np.expm1(sigma)))}
        jastrow = {"en": jnp.full((n_atoms,), _softplus_inv(1.0)), "ee": jnp.asarray(_softplus_inv(1.0))}
        return {"layers": layers, "orbitals": orbitals, "jastrow": jastrow}

    # ------------------------------------------------------------------ evaluation
    def _orbitals(self, params, r):
        """Orbital matrices per spin: (n_det, n_spin, n_spin) each."""
        n = self.n_electrons
        d_en = r[:, None, :] - self._nuclei[None]  # (n, M, 3)
        r2_en = jnp.sum(d_en * d_en, -1)
        r_en = jnp.sqrt(r2_en)
        h = _pair_features(d_en).reshape(n, -1)
        d_ee = r[:, None, :] - r[None, :, :] + jnp.asarray(np.eye(n))[..., None]  # diagonal: constant, masked out
        g = _pair_features(d_ee)
        up, dn = slice(0, self.n_up), slice(self.n_up, n)
        for layer in params["layers"]:
            mean_up = jnp.mean(h[up], 0) if self.n_up else jnp.zeros(h.shape[1])
            mean_dn = jnp.mean(h[dn], 0) if self.n_down else jnp.zeros(h.shape[1])
            pair_up = jnp.einsum("ij,ijf->if", self._mean_up_pair, g)
            pair_dn = jnp.einsum("ij,ijf->if", self._mean_dn_pair, g)
            f = jnp.concatenate([h, jnp.broadcast_to(mean_up, h.shape), jnp.broadcast_to(mean_dn, h.shape),
                                 pair_up, pair_dn], axis=1)
            new_h = jnp.tanh(f @ layer["one"]["w"] + layer["one"]["b"])
            h = new_h + h if new_h.shape == h.shape else new_h
            new_g = jnp.tanh(g @ layer["two"]["w"] + layer["two"]["b"])
            g = new_g + g if new_g.shape == g.shape else new_g
        s_en = r2_en / (1.0 + r_en)  # smooth at the nucleus, ~ r far away
        mats = []
        k_det = self.config.n_determinants
        for name, sl, n_spin in (("up", up, self.n_up), ("down", dn, self.n_down)):
            if n_spin == 0:
                continue
            p = params["orbitals"][name]
            lin = h[sl] @ p["w"] + p["b"]  # (n_spin, K*n_spin)
            sig = jax.nn.softplus(p["sigma"])  # (K*n_spin, M)
            env = jnp.sum(p["pi"][None] * jnp.exp(-sig[None] * s_en[sl][:, None, :]), -1)  # (n_spin, K*n_spin)
            phi = (lin * env).reshape(n_spin, k_det, n_spin)
            mats.append(jnp.transpose(phi, (1, 0, 2)))  # (K, electron, orbital)
        return mats, r_en

    def orbital_matrices(self, params: dict, r: jax.Array) -> list:
        """The orbital matrices per spin, ``[(n_det, n_up, n_up), (n_det, n_down, n_down)]`` (determinant,
        electron, orbital; a spin without electrons is left out) at electron positions ``r`` (n_electrons, 3).
        ψ = exp(J) Σ_k Π_σ det of these matrices."""
        return self._orbitals(params, r)[0]

    def _jastrow(self, params, r, r_en):
        c = jax.nn.softplus(params["jastrow"]["en"])
        j = -jnp.sum(self._charges * r_en / (1.0 + c * r_en))
        if self.n_electrons > 1:
            i, k = self._iu
            r_ee = jnp.sqrt(jnp.sum((r[i] - r[k]) ** 2, -1))
            b = jax.nn.softplus(params["jastrow"]["ee"])
            j = j + jnp.sum(self._cusp_a * r_ee / (1.0 + b * r_ee))
        return j

    def signed_log(self, params: dict, r: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(sign ψ, log|ψ|) at electron positions ``r`` (n_electrons, 3)."""
        mats, r_en = self._orbitals(params, r)
        sign, logdet = jnp.ones(self.config.n_determinants), jnp.zeros(self.config.n_determinants)
        for m in mats:
            if m.shape[-1] == 1:
                s, l = jnp.sign(m[:, 0, 0]), jnp.log(jnp.abs(m[:, 0, 0]))
            else:
                s, l = jnp.linalg.slogdet(m)
            sign, logdet = sign * s, logdet + l
        shift = jax.lax.stop_gradient(jnp.max(logdet))
        total = jnp.sum(sign * jnp.exp(logdet - shift))
        return jnp.sign(total), jnp.log(jnp.abs(total)) + shift + self._jastrow(params, r, r_en)

    def log_abs(self, params: dict, r: jax.Array) -> jax.Array:
        """log|ψ(r)| for electron positions ``r`` (n_electrons, 3)."""
        return self.signed_log(params, r)[1]

    def __call__(self, params: dict, r: jax.Array) -> jax.Array:
        return self.log_abs(params, r)

    def init_walkers(self, key: jax.Array, n_walkers: int) -> jax.Array:
        """Electron positions (n_walkers, n_electrons, 3): electrons spread over the nuclei by charge."""
        z = self._charges.astype(int).copy()
        owners = []
        for spin_count in (self.n_up, self.n_down):  # alternate atoms, heavy ones first
            for _ in range(spin_count):
                a = int(np.argmax(z)) if z.max() > 0 else 0
                owners.append(a)
                z[a] -= 1
        centres = self._nuclei[np.array(owners, dtype=int)]
        return centres[None] + jax.random.normal(key, (n_walkers, self.n_electrons, 3))
