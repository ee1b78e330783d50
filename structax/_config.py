"""Process-wide JAX settings: float64 for the structured fitter (must be set before any array exists)."""
import jax

jax.config.update("jax_enable_x64", True)
