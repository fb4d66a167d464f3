"""Memory a request needs, checked before allocating: a request that cannot fit is refused with
one line (what it needs, what is available, what would fit) instead of swapping or being killed."""
from __future__ import annotations

import os

from .errors import MemoryRequestError
from .numerics import observe
from .numerics.replicates import REPLICATES, replicate_sets

#: bytes per float64
F8 = 8
#: a local sweep worker: an interpreter with msat, numba and Dask imported (about 140-200 MB measured)
SWEEP_WORKER_BYTES = 200e6


def sweep_workers(asked, tasks: int) -> int:
    """How many local worker processes a sweep starts: `asked` (default: the cores, but no more than fit in the
    memory available), never more than its tasks; MemoryRequestError where they do not fit."""
    n = min(int(asked or min(os.cpu_count() or 1, int(available() // SWEEP_WORKER_BYTES) or 1)), tasks)
    require(n * SWEEP_WORKER_BYTES, f"{n} local sweep workers", "give fewer --workers")
    return n


def available() -> int:
    """Bytes of memory available to this process now: MemAvailable on Linux (total physical memory
    elsewhere), and no more than what an address-space limit (ulimit -v) leaves."""
    left = _address_space_left()
    return _physical() if left is None else min(_physical(), left)


def _address_space_left():
    """Bytes an address-space limit (RLIMIT_AS) still allows this process, or None without one."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as fh:
            used = next((int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:")), 0)
        return max(soft - used, 0)
    except (ImportError, OSError, ValueError):
        return None


def _physical() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} bytes"


def require(needed: float, what: str, fits: str = "") -> None:
    """Raise MemoryRequestError (an InputError) when ``needed`` bytes exceed the memory available."""
    have = available()
    if needed > have:
        hint = f"; {fits}" if fits else ""
        raise MemoryRequestError(f"{what} needs about {_size(needed)} of memory but {_size(have)} are available{hint}")


def needed(p, n_chi: int = 1) -> float:
    """Bytes a request (a runtime.params.Params) will allocate at its peak, an upper estimate
    (float64 everywhere). A linear network with D < P works from the thin SVD of X (runtime.spectral):
    X's copy, its factor and LAPACK's workspace, O(P D), instead of the P x P kernel."""
    from .spectral import THIN, basis, weights_hold_kernel

    f8 = F8
    P, D, Pt, N = p.P, p.D, p.P_test, p.N
    data = f8 * (P + Pt) * D
    thin = basis(P, D, p.activation) == THIN and p.method != "sample"
    modes = D + 1 if thin else P
    # dense: K (K^phi written over it), its eigenvectors (LAPACK's syevr needs O(P) besides), k*^T U, and
    # a margin of one P x P for the solvers' own
    kernel = f8 * (4.0 * P * D + P * modes + 2.0 * Pt * D) if thin else f8 * (3.0 * P * P + 3.0 * P * Pt)
    if p.method == "sample" and p.readout == "marginal":
        # per chain: Cov and its factor (P x P; where P > N Woodbury's N x N instead, numerics.marginal_hmc),
        # features and slopes of the train and test points and Cov^-1 of them, two weight copies and their
        # gradient; the conditional moments of every draw
        cov = 3.0 * min(P, N) ** 2 + 5.0 * P * Pt  # B, Cov^-1 B^T and the solve's temporaries (a review: 4-5)
        per_chain = f8 * (cov + 6.0 * (P + Pt) * N + 4.0 * N * D + p.samples * 2 * (P + Pt))
        return data + _chains_at_once(p, per_chain) + f8 * p.chains * p.samples * 2 * (P + Pt)
    if p.method == "sample":
        weights = sum(n * fan for n, fan in zip(p.widths, (D,) + tuple(p.widths[:-1])))
        units, L = sum(p.widths), p.depth
        kernels = 0 if L == 1 and weights_hold_kernel(p.activation, P, D, N) else L * P * P
        per_chain = f8 * (14.0 * weights + 3.0 * units * max(P, Pt) + kernels + D * D
                          + p.samples * (P + Pt + 4 + L))
        return data + _chains_at_once(p, per_chain) + f8 * p.chains * p.samples * (P + Pt)
    if p.activation != "linear" and p.method == "adaptive" and p.depth > 1:
        # per replicate draw set: features, slopes, weights of every layer; fields and kernels P x P
        draws = (p.mc_samples or 32000) / 8
        return data + kernel + f8 * (8.0 * draws * (P + Pt) * p.depth + 20.0 * p.depth * P * P)
    if p.activation != "linear" and p.method == "adaptive":
        n = P + Pt
        draws = p.mc_samples or 80000  # the final fixed draws, all sets (numerics.reweighted_saddle)
        single = data + kernel + f8 * (4.0 * draws * (n + Pt) + 0.5 * draws * D + 12.0 * n * n)
        if p.order != 2:
            return single
        # the field's loop (docs/theory.md §2e): d = dm + P_test coordinates, d x d matrices (2 R of them the
        # prior's and the plain draws' cumulants, R sets each, kept along a chi ladder for the control variate), the
        # index-form lifts (P^4, P^3 P_test and (P P_test)^2), the features of the loop's draws and as many
        # again (M x n each, M all sets' draws: up to 32 max(20000, 10 dm), or the mc_samples they start
        # from) and u in blocks of 4096 draws (numerics.field_cumulants, numerics.nonlinear_loop)
        dm = P * (P + 1) / 2 + P * Pt
        d = dm + Pt
        M = max(32.0 * max(20000.0, 10.0 * dm), float(p.mc_samples or 0))
        R = replicate_sets(p.mc_samples) if p.mc_samples else REPLICATES
        return single + f8 * ((10.0 + 2.0 * R) * d * d + 3.0 * P ** 4 + 2.0 * P ** 3 * Pt + (P * Pt) ** 2 + 2.0 * M * n
                              + 3.0 * 4096 * d)
    if p.method == "adaptive" and p.order == 2:
        # the kernel field (methods.kernelfield): besides its n x n matrices, its test covectors and outputs and
        # the order-1 start's test forms, about 100 + 4n rows of P_test (measured 95 and 210 at P_test = 1e5,
        # n = 5 and 20) and the outputs kept per ladder point
        n = min(P, D)
        return data + kernel + f8 * (30.0 * n * n + 2.0 * P * D + (100.0 + 4.0 * n + 5.0 * max(n_chi, 1)) * Pt)
    # the observable tables over the modes (four arrays per derivative in s) at J points, and rows of P_test: the
    # exact integral evaluates them at its quadrature nodes, one block of test points at a time (m*, v* and v*'s
    # round-off bound per node, and the masked copies and temporaries of their integration: 8 arrays of at most
    # observe.TEST_BLOCK entries), and holds 11 rows per point (its outputs, both grids' sums and their round-off
    # bounds; peaks traced at P_test = 2e4 to 1e6 lie 1.2 to 2.5 times under the charge); the other methods at the
    # ladder's points, all at once. Kept per ladder point: the train means and test outputs, for the
    # loop every order's test means, variances, m*'s derivatives and their squares, and again for the next order's
    # truncation check (12L + 22 rows measured, L = 0, 1, 2, charged 13L + 26); and once, k*^T U squared
    # (test_var) and the saddles' test forms (adaptive: 3 x modes), with 20 rows of margin
    L, ladder = p.order or 0, max(n_chi, 1)
    if p.method == "exact":  # its rows of P_test at every node are taken in blocks (observe.TEST_BLOCK entries)
        J, per_point, n_tab = exact_nodes(p), 11.0, 1
        per_node = 8.0 * min(J * Pt, observe.TEST_BLOCK)
    else:
        J, per_node, n_tab = ladder, 0.0, 2 * L + (3 if p.method == "loop" else 1)
        per_point = 13.0 * L + 26.0 if p.method == "loop" else 5.0
    work = (3.0 if p.method == "adaptive" else 1.0) * modes + 20.0
    tables = f8 * (J * 4.0 * n_tab * modes + per_node + ladder * (2.0 * P + per_point * Pt) + work * Pt)
    return data + kernel + tables


#: quadrature nodes of the exact integral (methods.exact: an eighth of the peak's width over where the integrand
#: exceeds e^-60 of it), their most over data sets, N, chi, kappa and depths 1 to 3 measured: 2964 at N = 1, 1552
#: at N = 2, 792 at N = 5, 530 at N = 10, 384 at N = 50, 197 at N >= 1000 (the narrowest layer's N); the charge,
#: EXACT_NODES + EXACT_NODES_N / N, lies 1.25 to 2 times above them
EXACT_NODES, EXACT_NODES_N = 400, 4000.0


def exact_nodes(p) -> int:
    """An upper estimate of the exact integral's quadrature nodes per chi for the request p."""
    return int(EXACT_NODES + EXACT_NODES_N / min(p.widths))


def _chains_at_once(p, per_chain: float) -> float:
    """Bytes of the chains sampled at once (numerics.hmc.run_jobs: one process each, up to the cores); with more
    than one, each process also holds an interpreter with msat and numba (an outside audit measured linear HMC at
    P = 20,000, N = 2,000: 1.13 GB per chain process against 0.95 GB of arrays)."""
    n = min(p.chains, os.cpu_count() or 1)
    return n * (per_chain + (SWEEP_WORKER_BYTES if n > 1 else 0.0))


def what_fits(p, n_chi: int = 1) -> str:
    """The largest P (at this request's D, P_test, N and ladder) that fits in the memory available, as a hint."""
    have = available()
    if needed(p.replace(P=1), n_chi) > have:
        return "even P = 1 does not fit: reduce D, N or P_test (or --samples/--chains for sampling)"
    lo, hi = 1, max(p.P, 2)
    while hi - lo > max(lo // 100, 1):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if needed(p.replace(P=mid), n_chi) <= have else (lo, mid)
    return f"P <= {lo} would fit at this D, N and P_test"
