"""Agreement table of sampled linear networks with the exact posterior (docs/theory.md §7), as z-scores.

For P = 8, D = 12, N = 20 and P = 50, D = 60, N = 100, chi in {1, sqrt(N), N}: z = (sampled -
exact) / MCSE for every train mean, test mean, test variance and directional hidden-weight moment.

    python benchmarks/sampler_agreement.py
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "runtime"))
from test_sampler import _compare_linear  # noqa: E402


def main():
    for P, D, N, samples in ((8, 12, 20, 1500), (50, 60, 100, 2000)):
        for chi in (1.0, float(np.sqrt(N)), float(N)):
            z = _compare_linear(P, D, N, samples=samples, chains=4, chis=[chi])
            print(f"P={P:3d} D={D:3d} N={N:4d} chi={chi:7.3f}: {len(z):4d} z-scores, RMS {np.sqrt(np.mean(z**2)):.2f}, "
                  f"max |z| {np.max(np.abs(z)):.2f}")


if __name__ == "__main__":
    main()
