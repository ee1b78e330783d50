"""
Scientific machine learning (:mod:`structax.sciml`)
===================================================

Each line of work is a subpackage; import it by name (``from structax.sciml import phase``).

Subpackages
-----------
phase      STFT phase retrieval: ``phase.retrieve(S, n_fft, hop_length, method="pghi+fgla")`` with
           Griffin-Lim, fast Griffin-Lim, PGHI and PGHI+FGLA; ``phase.stft``/``phase.istft`` in
           librosa's convention; ``phase.spectral_convergence``; CLI ``structax sciml phase``
pde        high-dimensional PDEs: ``pde.solve_bsde`` (deep BSDE; ``pde.hjb``, ``pde.allen_cahn``) and
           ``pde.solve_kolmogorov`` (deep Kolmogorov; ``pde.heat``, ``pde.basket_option``), Monte Carlo
           references, error curves; CLI ``structax sciml hjb | allen-cahn | heat | basket``
uniform    uniform accuracy of learned ReLU networks: ``uniform.uniform_study`` (L2 and L∞ error against
           the sample size), ``uniform.plot_study``; CLI ``structax sciml uniform --out DIR``
vmc        neural variational Monte Carlo for atoms and small molecules: ``vmc.run_vmc("He")``
           (determinants of equivariant neural orbitals, exact cusps, Metropolis–Hastings, stochastic
           reconfiguration, blocking errors), ``vmc.molecule`` presets H, He, Li, Be, H2, LiH and an
           XYZ-like format; CLI ``structax sciml vmc SYSTEM --steps 2000 --out DIR``
"""
