"""
High-dimensional PDEs (:mod:`structax.sciml.pde`)
=================================================

Neural solvers for parabolic PDEs in hundreds of dimensions, each checked against a reference while it
trains: the deep BSDE method for semilinear PDEs at one point, and the deep Kolmogorov method for
linear PDEs on a whole box.

Solvers
-------
solve_bsde            deep BSDE (Han, Jentzen & E 2018): u(0, x0) of a semilinear parabolic PDE
solve_kolmogorov      deep Kolmogorov (Beck et al. 2021): x -> u(T, x) on a box, by regression on SDE endpoints
BSDEResult            u0, relative error, training history, parameters
KolmogorovResult      predict(x), relative L1 error on test points, training history
History               iteration, loss, estimate, error, cpu_time per evaluation
plot_history          error-vs-reference curves (log scale)
simulate_paths        Euler–Maruyama paths of a BSDEProblem's forward SDE

Problems
--------
BSDEProblem           dataclass: dim, horizon, drift, diffusion, generator f, terminal g, x0, reference
KolmogorovProblem     dataclass: dim, horizon, terminal, box, exact endpoint sampler or drift/diffusion
hjb                   Hamilton–Jacobi–Bellman, d = 100, λ = 1, T = 1 (reference by Cole–Hopf Monte Carlo)
hjb_reference         Cole–Hopf Monte Carlo value of the HJB solution, with its standard error
allen_cahn            Allen–Cahn, d = 100, T = 0.3 (reference 0.052802 from the paper)
heat                  heat equation on [0, 1]^d with solution |x|^2 + 2Td
basket_option         Black–Scholes basket call on a box of spot prices
kolmogorov_reference  Monte Carlo u(T, x) at given points (antithetic), with standard errors

Several devices: pass ``sharding=NamedSharding(mesh, PartitionSpec(None, "batch"))`` to ``solve_bsde``
to split every batch of paths across the devices of ``mesh`` (see ``docs/sciml_pde.md``).

Examples
--------
>>> from structax.sciml import pde
>>> p = pde.hjb(dim=10)
>>> res = pde.solve_bsde(p, n_iter=400, progress=False)
>>> bool(abs(res.u0 / p.reference - 1) < 0.02)
True
"""
from ._bsde import BSDEResult, simulate_paths, solve_bsde
from ._kolmogorov import KolmogorovResult, solve_kolmogorov
from ._plot import plot_history
from ._problems import (ALLEN_CAHN_REFERENCE, BSDEProblem, KolmogorovProblem, allen_cahn, basket_option, heat,
                        hjb, hjb_reference, kolmogorov_reference)
from ._train import History

__all__ = ["solve_bsde", "solve_kolmogorov", "BSDEResult", "KolmogorovResult", "History", "plot_history",
           "simulate_paths", "BSDEProblem", "KolmogorovProblem", "hjb", "hjb_reference", "allen_cahn",
           "ALLEN_CAHN_REFERENCE", "heat", "basket_option", "kolmogorov_reference"]
