"""Process-wide JAX settings, applied on ``import structax`` (before any array exists).

- float64: the structured fitter needs it (REML differences are tiny against yᵀy).
- A persistent compilation cache (``~/.cache/structax/jax``; set ``STRUCTAX_JAX_CACHE`` to another folder,
  or to ``off``): a family's derivative kernels are compiled once per machine, not once per process.
"""
import os

import jax

jax.config.update("jax_enable_x64", True)

_cache = os.environ.get("STRUCTAX_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "structax", "jax"))
if _cache.lower() not in ("", "0", "off", "none", "false"):
    try:
        os.makedirs(_cache, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", _cache)
        # our kernels compile in 0.1–1 s, below JAX's default threshold for caching
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
    except OSError:  # read-only home: compile per process as before
        pass
