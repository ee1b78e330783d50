"""structax.transform: distribution transforms (Redistributor) and colour transfer."""
