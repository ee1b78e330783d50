"""structax.sciml: placeholder for a later issue (nothing public yet)."""
