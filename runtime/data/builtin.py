"""Built-in data sets (docs/theory.md §8).

* ``ising``: configurations of a periodic 1-D Ising chain of D spins (energy
  ``-J sum_i s_i s_{i+1}``, inverse temperature 1), label ``sign(sum of spins)`` with ties broken
  by the first spin. Sampled by Metropolis on ``P + P_test`` independent chains in parallel
  (colour-by-colour updates: even/odd sites, plus the last site on its own when D is odd, so that no
  two spins updated together are neighbours; each site is proposed with probability 3/4 per colour
  update, which keeps the chain irreducible). Each chain starts from a random configuration and
  contributes its state after ``sweeps`` full sweeps; different samples are independent chains.
* ``teacher``: ``x ~ N(0, I_D)``, ``y = x . w0 / sqrt(D)`` for a seeded teacher ``w0 ~ N(0, I_D)``,
  optional Gaussian label noise on the training labels.

Sizes are checked against the memory available before anything is allocated.
"""
from __future__ import annotations

import math

import numpy as np

from .. import memory, values
from ..errors import InputError
from .validate import Dataset

#: Metropolis sweeps each Ising chain runs before its state is taken. Measured from a random start
#: (D = 200): the nearest-neighbour correlation and the magnetisation variance (which sets the
#: label) reach equilibrium within about 10 sweeps at J = 0.5 and about 20 at J = 1.
ISING_SWEEPS = 40

BUILTINS = ("ising", "teacher")

_BUILTIN_OPTIONS = {"ising": ("J", "sweeps"), "teacher": ("noise",)}

# Probability that a site is proposed for a flip in its colour update (see _ising_spins); 3/4
# mixes fastest among the values tried on small rings (second eigenvalue of the sweep kernel).
_PROPOSE = 0.75


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(values.seed(seed))


def reserve(P: int, D: int, P_test: int, name: str) -> None:
    """Refuse a set that cannot be held: X and X_test as float64 plus the generator's work arrays."""
    rows = P + P_test
    fits = int((memory.available() - memory.F8 * 2.0 * rows) // (memory.F8 * 3 * rows))
    memory.require(memory.F8 * 3.0 * rows * D + memory.F8 * 2.0 * rows,
                   f"the built-in set {name!r} with P = {P}, D = {D}, P_test = {P_test}",
                   f"at most D = {fits} fits" if fits >= 1 else "no D fits: a smaller P")


def _uniform16(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Uniform integers in [0, 65536) from the raw bit stream (4 per 64-bit draw)."""
    n = shape[0] * shape[1]
    raw = rng.bit_generator.random_raw((n + 3) // 4)
    return raw.view(np.uint16)[:n].reshape(shape)


def _ising_spins(chains: int, D: int, J: float, sweeps: int, rng: np.random.Generator) -> np.ndarray:
    """Metropolis sampler for ``chains`` independent periodic Ising chains of D spins.

    Returns a bool array (chains, D), True for spin +1. Spins are stored site-major with one ghost
    site at each end, so that every colour class is a strided block of contiguous rows.

    One sweep updates the colour classes in turn. Each site of the class is proposed for a flip
    with probability ``_PROPOSE`` (independently), and a proposed flip is accepted with the
    Metropolis probability min(1, exp(-dE)), dE = 2 J s_i (s_{i-1} + s_{i+1}). That probability is
    q = exp(-4|J|) when s_i is aligned (J > 0) or anti-aligned (J < 0) with both neighbours, and 1
    otherwise. Each single-site kernel satisfies detailed balance; the random proposal keeps the
    chain irreducible and aperiodic (proposing every site, with its deterministic zero-cost flips,
    is not: it conserves quantities and converges to the wrong distribution for small D).
    The combined test u < p uses 16-bit uniforms u/65536; the one tie value u == floor(65536 p)
    is resolved with a float draw, so the flip probability is exact to double precision."""
    S = np.empty((D + 2, chains), dtype=bool)
    S[1 : D + 1] = _uniform16(rng, (D, chains)) & 1
    if D == 1 or J == 0.0 or sweeps == 0:
        # D == 1: the energy -J s_0 s_0 is constant; J == 0: no coupling. Both are uniform, which
        # is exactly the random start.
        return np.ascontiguousarray(S[1 : D + 1].T)
    cheap = int(_PROPOSE * 65536)  # exact: _PROPOSE is a multiple of 2**-16
    scaled = _PROPOSE * math.exp(-4.0 * abs(J)) * 65536.0
    k = int(math.floor(scaled))
    frac = scaled - k
    aligned = J > 0
    if D % 2 == 0:
        colours = [(0, D), (1, D)]
    else:  # odd ring: site D-1 neighbours site 0 (both even) so it gets a colour of its own
        colours = [(0, D - 1), (1, D), (D - 1, D)]
    for _ in range(sweeps):
        for start, stop in colours:
            S[0] = S[D]
            S[D + 1] = S[1]
            centre = S[start + 1 : stop + 1 : 2]
            left = S[start:stop:2]
            right = S[start + 2 : stop + 2 : 2]
            if aligned:
                costly = centre == left
                costly &= centre == right
            else:
                costly = centre != left
                costly &= centre != right
            u = _uniform16(rng, centre.shape)
            flip = u < k
            if frac > 0.0:
                tie = u == k
                if tie.any():
                    idx = np.flatnonzero(tie)  # tie and flip are fresh C-contiguous arrays
                    flip.reshape(-1)[idx] = rng.random(idx.shape[0]) < frac
            free = u < cheap
            free &= ~costly
            flip |= free
            np.bitwise_xor(centre, flip, out=centre)
    return np.ascontiguousarray(S[1 : D + 1].T)


def _ising_labels(X: np.ndarray) -> np.ndarray:
    total = X.sum(axis=1)
    y = np.sign(total)
    tie = y == 0
    y[tie] = np.sign(X[tie, 0])
    return y


def ising(P: int, D: int, P_test: int = 0, seed=0, J: float = 0.5, sweeps: int = ISING_SWEEPS) -> Dataset:
    """Configurations of a periodic 1-D Ising chain (coupling J, inverse temperature 1) drawn by
    Metropolis, label sign(sum of spins) with ties broken by the first spin. The first P chains
    are the training set, the next P_test the test set (same process, independent chains)."""
    P = values.count("P", P, 1)
    D = values.count("D", D, 1)
    P_test = values.count("P_test", P_test, 0)
    J = values.real("J", J)
    sweeps = values.count("sweeps", sweeps, 0)
    reserve(P, D, P_test, "ising")
    rng = _rng(seed)
    spins = _ising_spins(P + P_test, D, J, sweeps, rng)
    X_all = np.where(spins, 1.0, -1.0)
    y_all = _ising_labels(X_all)
    return Dataset(
        X=np.ascontiguousarray(X_all[:P]),
        y=np.ascontiguousarray(y_all[:P]),
        X_test=np.ascontiguousarray(X_all[P:]),
        y_test=np.ascontiguousarray(y_all[P:]),
        name="ising",
    )


def teacher(P: int, D: int, P_test: int = 0, seed=0, noise: float = 0.0) -> Dataset:
    """Gaussian inputs x ~ N(0, I_D) with linear-teacher labels y = x . w0 / sqrt(D), w0 ~ N(0, I_D)
    drawn first from the seed; Gaussian noise of std ``noise`` is added to the training labels
    only."""
    P = values.count("P", P, 1)
    D = values.count("D", D, 1)
    P_test = values.count("P_test", P_test, 0)
    noise = values.real("noise", noise, minimum=0.0)
    reserve(P, D, P_test, "teacher")
    rng = _rng(seed)
    w0 = rng.standard_normal(D)
    X = rng.standard_normal((P, D))
    X_test = rng.standard_normal((P_test, D))
    scale = 1.0 / math.sqrt(D)
    y = (X @ w0) * scale
    y_test = (X_test @ w0) * scale
    if noise > 0.0:
        y = y + noise * rng.standard_normal(P)
    return Dataset(X=X, y=y, X_test=X_test, y_test=y_test, name="teacher")


def builtin(name: str, P: int, D: int, P_test: int = 0, seed=0, **options) -> Dataset:
    """A built-in data set by name ("ising" or "teacher"); ``options`` go to the generator
    (J, sweeps for ising; noise for teacher)."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in BUILTINS:
        raise InputError(f"unknown built-in dataset {name!r} (choose from {', '.join(BUILTINS)})")
    P = values.count("P", P, 1)
    D = values.count("D", D, 1)
    P_test = values.count("P_test", P_test, 0)
    allowed = _BUILTIN_OPTIONS[key]
    for option in options:
        if option not in allowed:
            raise InputError(
                f"unknown option {option!r} for built-in dataset '{key}' "
                f"(allowed: {', '.join(allowed)})"
            )
    generator = ising if key == "ising" else teacher
    return generator(P, D, P_test, seed, **options)
