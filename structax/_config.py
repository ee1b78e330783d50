"""Process-wide JAX settings: float64 for the structured fitter (set before any array exists)."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu") if not os.environ.get("JAX_PLATFORMS") and not os.environ.get("STRUCTAX_ALLOW_ACCELERATOR") else None

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
