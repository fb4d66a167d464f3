"""The benchmarks' --blas-threads option: the BLAS thread count fixed before numpy loads, so that
ratios measured on a shared 2-core machine are stable (1 thread) or use every core (unset)."""
import os


def add_option(ap):
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="set OPENBLAS/OMP/MKL_NUM_THREADS before numpy loads (default: as the "
                         "environment has it); 1 gives stable ratios on a shared machine")


def apply(threads):
    """Call before numpy (and its BLAS) is first imported."""
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
