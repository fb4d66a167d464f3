"""Validation of user arrays (docs/theory.md §8): everything returned is float64 and
C-contiguous; every mistake raises InputError with a one-line message that names the file, key
or column at fault (the CLI prints it and exits with code 2)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def fail(message: str) -> InputError:
    """An InputError whose message is folded onto one line."""
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


def _as_float(value, key: str, name: str) -> np.ndarray:
    if np.ma.is_masked(value):  # np.asarray drops the mask and keeps the values under it
        raise fail(f"{name}: {key} has masked entries; fill or drop them (every value is used)")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise fail(f"{name}: {key} is not a rectangular numeric array ({exc})") from None
    if raw.dtype.kind == "c":
        raise fail(f"{name}: {key} has complex values; real numbers are required")
    if raw.dtype.kind in "mMV":
        raise fail(f"{name}: {key} has dtype {raw.dtype}; real numbers are required")
    if raw.dtype.kind in "US" or (raw.dtype.kind == "O" and any(isinstance(v, (str, bytes)) for v in raw.flat)):
        # numpy would read the text '1_000' as 1000, which no data file means (also text inside an object array:
        # a DataFrame with a text column)
        raise fail(f"{name}: {key} is not numeric (text, dtype {raw.dtype})")
    try:
        # order="C", not ascontiguousarray: that makes a 0-d value 1-d, and the shape check would misreport it
        with np.errstate(over="ignore", under="ignore"):  # a long double beyond float64: judged below, one line
            out = np.asarray(raw, dtype=np.float64, order="C")
    except (TypeError, ValueError) as exc:
        raise fail(f"{name}: {key} is not numeric ({exc})") from None
    if raw.dtype.kind == "f" and raw.dtype.itemsize > 8:
        _check_float64_range(raw, out, key, name)
    return out


def _check_float64_range(raw: np.ndarray, out: np.ndarray, key: str, name: str) -> None:
    """A wider float (np.longdouble) whose finite values float64 reads as infinite, or whose non-zero ones it
    reads as 0, is refused as such (it was "contains inf", which the file did not hold, or a silent 0)."""
    over = np.isfinite(raw) & ~np.isfinite(out)
    if over.any():
        raise fail(f"{name}: {key} holds values beyond float64's range (largest {_sci(np.max(np.abs(raw[over])))}, "
                   f"first at {key}[{', '.join(map(str, np.argwhere(over)[0]))}]); rescale it")
    under = (raw != 0) & (out == 0)
    if under.any():
        raise fail(f"{name}: {key} holds non-zero values below float64's smallest (they read as 0; smallest "
                   f"{_sci(np.min(np.abs(raw[under])))}, first at {key}[{', '.join(map(str, np.argwhere(under)[0]))}])"
                   "; rescale it")


def _sci(x) -> str:
    """A long double in scientific notation (format() would pass it through float64: inf or 0)."""
    return np.format_float_scientific(x, precision=4, trim="-")


def _check_finite(arr: np.ndarray, key: str, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        what = "NaN" if np.isnan(arr[first]) else "inf"
        where = f"{key}[{', '.join(map(str, first))}]"
        raise fail(f"{name}: {key} contains {what} (first at {where}); all values must be finite")


def _as_vector(value, key: str, name: str, length: int, rows_of: str) -> np.ndarray:
    v = _as_float(value, key, name)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise fail(f"{name}: {key} must be a vector of length {length}, got shape {v.shape}")
    if v.shape[0] != length:
        raise fail(f"{name}: {key} has {v.shape[0]} entries but {rows_of} has {length} rows")
    return np.ascontiguousarray(v)


def _same_rows(a, b, keys: str, name: str) -> None:
    """Rows are matched by position: two labelled inputs (pandas) whose row labels differ are refused, since
    position would pair each x with another row's target."""
    ia, ib = getattr(a, "index", None), getattr(b, "index", None)
    if hasattr(ia, "equals") and hasattr(ib, "equals") and not ia.equals(ib):
        raise fail(f"{name}: {keys} have different row labels and msat pairs rows by position: if they "
                   "correspond by position pass arrays (y.to_numpy()), if by label align them (y.loc[X.index])")


def _same_columns(X, X_test, name: str) -> None:
    """Inputs are matched by position too: a labelled X_test (a DataFrame, or a Series for one point) whose
    column labels differ from X's would feed each input into another's weights. Called once the shapes agree
    (a wrong size is named as such; an empty X_test has no columns to compare)."""
    cx = getattr(X, "columns", None)
    one_point = getattr(X_test, "ndim", None) == 1
    if one_point and len(cx if cx is not None else ()) < 2:  # D = 1: a Series' index may be row labels
        return
    ct = getattr(X_test, "index" if one_point else "columns", None)
    if not (hasattr(cx, "equals") and hasattr(ct, "equals")) or len(X_test) == 0 or cx.equals(ct):
        return
    if cx.is_unique and ct.is_unique and len(cx) == len(ct) and set(cx) == set(ct):
        raise fail(f"{name}: X_test has X's columns in another order and msat pairs inputs by position: "
                   "reorder them (X_test[X.columns])")
    raise fail(f"{name}: X and X_test have different column labels and msat pairs inputs by position: if they "
               "correspond by position pass arrays (X_test.to_numpy())")


def validate(X, y, X_test=None, y_test=None, name: str = "data") -> Dataset:
    """Check and convert user arrays to a :class:`Dataset` (float64, C-contiguous).

    ``y`` may be (P,) or (P, 1); a 1-D ``X_test`` of length D is one test point; ``y_test`` needs
    ``X_test`` and one entry per test point. Raises InputError on any problem."""
    name = str(name)
    if X is None:
        raise fail(f"{name}: X is missing")
    if y is None:
        raise fail(f"{name}: y is missing")
    _same_rows(X, y, "X and y", name)
    _same_rows(X_test, y_test, "X_test and y_test", name)
    X_labelled, X_test_labelled = X, X_test
    X = _as_float(X, "X", name)
    if X.ndim != 2:
        raise fail(f"{name}: X must be a 2-D array (P x D), got shape {X.shape}")
    P, D = X.shape
    if P < 1 or D < 1:
        raise fail(f"{name}: X is empty (shape {X.shape}); need at least one sample and one input")
    _check_finite(X, "X", name)
    y = _as_vector(y, "y", name, P, "X")
    _check_finite(y, "y", name)

    if X_test is None:
        if y_test is not None:
            raise fail(f"{name}: y_test given without X_test")
        Xt = np.empty((0, D), dtype=np.float64)
    else:
        Xt = _as_float(X_test, "X_test", name)
        if Xt.size == 0 and Xt.shape in ((0,), (0, 0), (0, D)):  # no test points; (0, D + 3) is a mistake
            Xt = np.empty((0, D), dtype=np.float64)
        elif Xt.ndim == 1:
            if Xt.shape[0] != D:
                raise fail(
                    f"{name}: X_test is 1-D with {Xt.shape[0]} entries; as one test point it "
                    f"needs D = {D} (the columns of X)"
                )
            Xt = Xt.reshape(1, D)
        elif Xt.ndim != 2:
            raise fail(f"{name}: X_test must be a 2-D array (P* x D), got shape {Xt.shape}")
        elif Xt.shape[1] != D:
            raise fail(f"{name}: X_test has {Xt.shape[1]} columns but X has D = {D}")
        Xt = np.ascontiguousarray(Xt)
        _check_finite(Xt, "X_test", name)
        _same_columns(X_labelled, X_test_labelled, name)

    yt = None
    if y_test is not None:
        yt = _as_vector(y_test, "y_test", name, Xt.shape[0], "X_test")
        _check_finite(yt, "y_test", name)
    return Dataset(X=X, y=y, X_test=Xt, y_test=yt, name=name)
