"""Test-session settings, loaded before anything imports JAX (the doctests under structax/ included).

`make test` runs two pytest workers on a 2-core machine: each uses one thread for XLA and one for
OpenBLAS, so they do not oversubscribe the cores (and the CPU-time bars of the real-data tests
measure the fit, not threads spinning against each other). Values already set in the environment win.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
