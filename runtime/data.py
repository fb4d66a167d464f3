"""Data sets: validation of user arrays, .npz / .csv loaders and the built-in sets (THEORY §8).

Everything returned is float64 and C-contiguous. Every user mistake raises
:class:`~msat.runtime.errors.InputError` with a one-line message that names the file, key or
column at fault (the CLI prints it and exits with code 2).

Built-in sets:

* ``ising``: configurations of a periodic 1-D Ising chain of D spins (energy
  ``-J sum_i s_i s_{i+1}``, inverse temperature 1), label ``sign(sum of spins)`` with ties broken
  by the first spin. Sampled by Metropolis on ``P + P_test`` independent chains in parallel
  (colour-by-colour updates: even/odd sites, plus the last site on its own when D is odd, so that no
  two spins updated together are neighbours; each site is proposed with probability 3/4 per colour
  update, which keeps the chain irreducible). Each chain starts from a random configuration and
  contributes its state after ``sweeps`` full sweeps; different samples are independent chains.
* ``teacher``: ``x ~ N(0, I_D)``, ``y = x . w0 / sqrt(D)`` for a seeded teacher ``w0 ~ N(0, I_D)``,
  optional Gaussian label noise on the training labels.
"""
from __future__ import annotations

import csv
import math
import numbers
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msat.runtime.errors import InputError

__all__ = [
    "Dataset",
    "validate",
    "load_npz",
    "load_csv",
    "load",
    "save_npz",
    "ising",
    "teacher",
    "builtin",
    "BUILTINS",
    "ISING_SWEEPS",
]

#: Metropolis sweeps each Ising chain runs before its state is taken. Measured from a random start
#: (D = 200): the nearest-neighbour correlation and the magnetisation variance (which sets the
#: label) reach equilibrium within about 10 sweeps at J = 0.5 and about 20 at J = 1.
ISING_SWEEPS = 40

BUILTINS = ("ising", "teacher")

_BUILTIN_OPTIONS = {"ising": ("J", "sweeps"), "teacher": ("noise",)}

# Probability that a site is proposed for a flip in its colour update (see _ising_spins); 3/4
# mixes fastest among the values tried on small rings (second eigenvalue of the sweep kernel).
_PROPOSE = 0.75


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _fail(message: str) -> InputError:
    return InputError(_one_line(message))


@dataclass
class Dataset:
    """Training inputs ``X`` (P x D), targets ``y`` (P,), test inputs ``X_test`` (P* x D, P* may be
    0) and test targets ``y_test`` (P*,) or None when unknown."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray | None
    name: str

    @property
    def P(self) -> int:
        return int(self.X.shape[0])

    @property
    def D(self) -> int:
        return int(self.X.shape[1])

    @property
    def P_test(self) -> int:
        return int(self.X_test.shape[0])


# ----------------------------------------------------------------------------------- validation


def _as_float(value, key: str, name: str) -> np.ndarray:
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise _fail(f"{name}: {key} is not a rectangular numeric array ({exc})") from None
    if raw.dtype.kind == "c":
        raise _fail(f"{name}: {key} has complex values; real numbers are required")
    if raw.dtype.kind in "mMV":
        raise _fail(f"{name}: {key} has dtype {raw.dtype}; real numbers are required")
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _fail(f"{name}: {key} is not numeric ({exc})") from None
    return np.ascontiguousarray(arr)


def _check_finite(arr: np.ndarray, key: str, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "NaN" if np.isnan(arr[first]) else "inf"
        where = f"{key}[{', '.join(map(str, first))}]"
        raise _fail(f"{name}: {key} contains {what} (first at {where}); all values must be finite")


def _as_vector(value, key: str, name: str, length: int, rows_of: str) -> np.ndarray:
    v = _as_float(value, key, name)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise _fail(f"{name}: {key} must be a vector of length {length}, got shape {v.shape}")
    if v.shape[0] != length:
        raise _fail(f"{name}: {key} has {v.shape[0]} entries but {rows_of} has {length} rows")
    return np.ascontiguousarray(v)


def validate(X, y, X_test=None, y_test=None, name: str = "data") -> Dataset:
    """Check and convert user arrays to a :class:`Dataset` (float64, C-contiguous).

    ``y`` may be (P,) or (P, 1); a 1-D ``X_test`` of length D is one test point; ``y_test`` needs
    ``X_test`` and one entry per test point. Raises InputError on any problem."""
    name = str(name)
    if X is None:
        raise _fail(f"{name}: X is missing")
    if y is None:
        raise _fail(f"{name}: y is missing")
    X = _as_float(X, "X", name)
    if X.ndim != 2:
        raise _fail(f"{name}: X must be a 2-D array (P x D), got shape {X.shape}")
    P, D = X.shape
    if P < 1 or D < 1:
        raise _fail(f"{name}: X is empty (shape {X.shape}); need at least one sample and one input")
    _check_finite(X, "X", name)
    y = _as_vector(y, "y", name, P, "X")
    _check_finite(y, "y", name)

    if X_test is None:
        if y_test is not None:
            raise _fail(f"{name}: y_test given without X_test")
        Xt = np.empty((0, D), dtype=np.float64)
    else:
        Xt = _as_float(X_test, "X_test", name)
        if Xt.size == 0 and Xt.ndim in (1, 2):
            Xt = np.empty((0, D), dtype=np.float64)
        elif Xt.ndim == 1:
            if Xt.shape[0] != D:
                raise _fail(
                    f"{name}: X_test is 1-D with {Xt.shape[0]} entries; as one test point it "
                    f"needs D = {D} (the columns of X)"
                )
            Xt = Xt.reshape(1, D)
        elif Xt.ndim != 2:
            raise _fail(f"{name}: X_test must be a 2-D array (P* x D), got shape {Xt.shape}")
        elif Xt.shape[1] != D:
            raise _fail(f"{name}: X_test has {Xt.shape[1]} columns but X has D = {D}")
        Xt = np.ascontiguousarray(Xt)
        _check_finite(Xt, "X_test", name)

    yt = None
    if y_test is not None:
        yt = _as_vector(y_test, "y_test", name, Xt.shape[0], "X_test")
        _check_finite(yt, "y_test", name)
    return Dataset(X=X, y=y, X_test=Xt, y_test=yt, name=name)


# ---------------------------------------------------------------------------------------- files


def _existing_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise _fail(f"data file not found: {p}")
    if not p.is_file():
        raise _fail(f"data path is not a file: {p}")
    return p


def load_npz(path) -> Dataset:
    """Load an .npz archive with keys X, y (required) and X_test, y_test (optional), without
    pickle. Other keys are ignored."""
    p = _existing_file(path)
    try:
        archive = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error):
        raise _fail(f"{p}: not a readable .npz archive (corrupt file or not written by numpy.savez)") from None
    if not hasattr(archive, "files"):  # a plain .npy array stored under a .npz name
        raise _fail(f"{p}: holds a single .npy array, not an .npz archive with keys X and y")
    with archive:
        keys = list(archive.files)
        present = ", ".join(keys) if keys else "none"
        for key in ("X", "y"):
            if key not in keys:
                raise _fail(f"{p}: required key '{key}' is missing (keys present: {present})")
        arrays = {}
        for key in ("X", "y", "X_test", "y_test"):
            if key not in keys:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
                    raise _fail(
                        f"{p}: array '{key}' holds Python objects (pickled data), which are not "
                        f"loaded for safety; save plain numeric arrays"
                    ) from None
                raise _fail(f"{p}: array '{key}' could not be read ({exc})") from None
            except Exception as exc:  # corrupt zip member: BadZipFile, zlib.error, OSError, EOFError
                raise _fail(f"{p}: array '{key}' could not be read (corrupt archive: {exc})") from None
    return validate(arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test"), name=str(p))


def _parse_float(cell: str, p: Path, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise _fail(f"{p}: empty cell at line {line}, column '{column}'")
    try:
        value = float(text)
    except ValueError:
        raise _fail(f"{p}: non-numeric value {text!r} at line {line}, column '{column}'") from None
    if not math.isfinite(value):
        raise _fail(f"{p}: non-finite value {text!r} at line {line}, column '{column}'")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_csv(path, target: str = "y") -> Dataset:
    """Load a CSV file with a header row. Column ``target`` is the target; an optional column
    ``split`` with values train/test (case-insensitive) marks test rows; every other column is an
    input. Blank lines are skipped. Test rows may leave the target empty (all of them), in which
    case ``y_test`` is None."""
    if not isinstance(target, str) or not target.strip():
        raise _fail(f"target column name must be a non-empty string, got {target!r}")
    target = target.strip()
    p = _existing_file(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = None
            rows: list[tuple[int, list[str]]] = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header = [cell.strip() for cell in row]
                else:
                    rows.append((reader.line_num, row))
    except UnicodeDecodeError:
        raise _fail(f"{p}: not a UTF-8 text CSV file") from None
    except csv.Error as exc:
        raise _fail(f"{p}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise _fail(f"{p}: cannot be read ({exc.strerror or exc})") from None

    if header is None:
        raise _fail(f"{p}: the CSV file is empty (a header row is required)")
    if all(_is_number(cell) for cell in header):
        raise _fail(f"{p}: the first row is numeric; a header row with column names is required")
    for position, column in enumerate(header, start=1):
        if not column:
            raise _fail(f"{p}: header column {position} has an empty name")
    seen = set()
    for column in header:
        if column in seen:
            raise _fail(f"{p}: duplicate column name '{column}' in the header")
        seen.add(column)
    if target not in header:
        raise _fail(f"{p}: target column '{target}' not found (columns: {', '.join(header)})")
    t_index = header.index(target)
    s_index = header.index("split") if ("split" in header and target != "split") else None
    inputs = [i for i in range(len(header)) if i != t_index and i != s_index]
    if not inputs:
        raise _fail(f"{p}: no input columns (only '{target}'" + (" and 'split'" if s_index is not None else "") + ")")
    if not rows:
        raise _fail(f"{p}: the CSV file has a header but no data rows")

    X_rows, y_rows, Xt_rows, yt_cells = [], [], [], []
    for line, row in rows:
        if len(row) != len(header):
            raise _fail(f"{p}: line {line} has {len(row)} fields but the header has {len(header)}")
        is_test = False
        if s_index is not None:
            flag = row[s_index].strip().lower()
            if flag not in ("train", "test"):
                raise _fail(
                    f"{p}: unknown split value {row[s_index].strip()!r} at line {line} "
                    f"(expected train or test)"
                )
            is_test = flag == "test"
        x = [_parse_float(row[i], p, line, header[i]) for i in inputs]
        if is_test:
            Xt_rows.append(x)
            yt_cells.append((line, row[t_index]))
        else:
            X_rows.append(x)
            y_rows.append(_parse_float(row[t_index], p, line, target))
    if not X_rows:
        raise _fail(f"{p}: no training rows (every row has split = test)")

    y_test = None
    if yt_cells and any(cell.strip() for _, cell in yt_cells):
        y_test = [_parse_float(cell, p, line, target) for line, cell in yt_cells]
    D = len(inputs)
    X_test = np.asarray(Xt_rows, dtype=np.float64).reshape(len(Xt_rows), D)
    return validate(np.asarray(X_rows, dtype=np.float64), np.asarray(y_rows, dtype=np.float64),
                    X_test, y_test, name=str(p))


def load(path, target: str = "y") -> Dataset:
    """Load a data file, dispatching on its suffix (.npz or .csv)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return load_npz(p)
    if suffix == ".csv":
        return load_csv(p, target=target)
    raise _fail(f"{p}: unsupported data file type '{p.suffix or '(no suffix)'}' (expected .npz or .csv)")


def save_npz(path, dataset: Dataset) -> None:
    """Write a dataset as an .npz archive (plain float arrays, no pickle) readable by load_npz."""
    arrays = {
        "X": np.asarray(dataset.X, dtype=np.float64),
        "y": np.asarray(dataset.y, dtype=np.float64),
        "X_test": np.asarray(dataset.X_test, dtype=np.float64),
    }
    if dataset.y_test is not None:
        arrays["y_test"] = np.asarray(dataset.y_test, dtype=np.float64)
    np.savez(path, **arrays)


# -------------------------------------------------------------------------------- built-in sets


def _count(value, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise _fail(f"{key} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise _fail(f"{key} must be an integer >= {minimum}, got {value}")
    return value


def _real(value, key: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise _fail(f"{key} must be a finite real number, got {value!r}")
    value = float(value)
    if minimum is not None and value < minimum:
        raise _fail(f"{key} must be >= {minimum}, got {value}")
    return value


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, bool):
        raise _fail(f"seed must be a non-negative integer, got {seed!r}")
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise _fail(f"seed must be a non-negative integer, got {seed!r} ({exc})") from None


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
    P = _count(P, "P", 1)
    D = _count(D, "D", 1)
    P_test = _count(P_test, "P_test", 0)
    J = _real(J, "J")
    sweeps = _count(sweeps, "sweeps", 0)
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
    P = _count(P, "P", 1)
    D = _count(D, "D", 1)
    P_test = _count(P_test, "P_test", 0)
    noise = _real(noise, "noise", minimum=0.0)
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
        raise _fail(f"unknown built-in dataset {name!r} (choose from {', '.join(BUILTINS)})")
    P = _count(P, "P", 1)
    D = _count(D, "D", 1)
    P_test = _count(P_test, "P_test", 0)
    allowed = _BUILTIN_OPTIONS[key]
    for option in options:
        if option not in allowed:
            raise _fail(
                f"unknown option {option!r} for built-in dataset '{key}' "
                f"(allowed: {', '.join(allowed)})"
            )
    generator = ising if key == "ising" else teacher
    return generator(P, D, P_test, seed, **options)
