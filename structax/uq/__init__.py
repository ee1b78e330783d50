"""structax.uq: placeholder for a later issue (nothing public yet)."""
