"""Validation of single values, in one place: every number a user gives (CLI, API, built-in data
set options) passes through these functions, which raise InputError with a one-line message.

Ranges: positive reals lie in [1e-150, 1e150] and widths below 2**53, so that the products the
theory forms from a few of them (chi/kappa |y|^2, g_v K, N chi, ...) stay finite in float64; chi may be
any positive number (the contract), and a point beyond float64's headroom fails as a point (exit 3);
docs/theory.md §1 says what each parameter means.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Sequence

import numpy as np

from .errors import InputError

#: positive real parameters must lie in [REAL_MIN, REAL_MAX]
REAL_MIN, REAL_MAX = 1e-150, 1e150
#: chi has no range but its sign (a point beyond float64's headroom fails as a point)
CHI_RANGE = (0.0, math.inf)
#: integers (widths, sizes, counts) must stay below 2**53: exact in float64
INT_MAX = 2**53
#: a number as it is typed (flags, lists, CSV cells): ASCII decimal, optional exponent, or inf/nan (refused
#: later as out of range or non-finite); Python's float() and int() also take `1_000` and non-ASCII digits
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE | re.ASCII)


def _is_real(value) -> bool:
    return (not isinstance(value, bool)) and isinstance(value, (numbers.Real, np.floating, np.integer))


def positive(name: str, value, integer: bool = False, bounds=(REAL_MIN, REAL_MAX)):
    """A positive finite number (an int when ``integer``) within the ranges above (reals: within ``bounds``)."""
    what = "a positive integer" if integer else "a positive number"
    if isinstance(value, np.ndarray) and value.ndim == 0:  # np.array(0.5) is one value, as 0.5 is
        value = value[()]
    if not _is_real(value):
        raise InputError(f"{name} must be {what}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be {what}" + ("" if integer else " (finite)") + f", got {value!r}")
    if integer:
        if v != int(v):
            raise InputError(f"{name} must be a positive integer, got {value!r}")
        if v >= INT_MAX:
            raise InputError(f"{name} must be below 2**53, got {value!r}")
        return int(v)
    if not bounds[0] <= v <= bounds[1]:
        raise InputError(f"{name} must lie between {bounds[0]:g} and {bounds[1]:g}, got {value!r}")
    return v


def is_number(text: str) -> bool:
    """Whether `text` is a number as NUMBER writes it (surrounding blanks aside)."""
    return NUMBER.fullmatch(text.strip()) is not None


def from_text(name: str, text: str) -> float:
    """A number typed as text; InputError where it is not one, or where float64 reads a non-zero number as 0
    (1e-400: the range check would then report 0.0, which is not what was typed) or a finite one as infinite
    (1e400). The text must be a number as NUMBER writes it."""
    if not is_number(text):
        raise InputError(f"{name} must be a number, got {text!r}")
    v = float(text)
    if math.isinf(v) and "inf" not in text.lower():
        raise InputError(f"{name} {text.strip()} is beyond float64's range (it reads as infinite)")
    if v == 0 and any(c in "123456789" for c in text.lower().partition("e")[0]):
        raise InputError(f"{name} {text.strip()} is below the smallest float64 number (it reads as 0)")
    return v


def count(name: str, value, minimum: int = 0, maximum: int | None = None) -> int:
    """An integer >= minimum (a size or a number of draws), at most maximum when given."""
    given = value  # as typed in the messages: 1e300 is not printed with its 301 digits, and a list's 0 not as 0.0
    if isinstance(given, float) and given.is_integer() and abs(given) < 1e16:
        given = int(given)
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        if _is_real(value) and math.isfinite(float(value)) and float(value).is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {given}")
    if value >= INT_MAX:
        raise InputError(f"{name} must be below 2**53, got {given}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be an integer from {minimum} to {maximum}, got {given}")
    return value


def real(name: str, value, minimum: float | None = None) -> float:
    """A finite real number (>= minimum when given)."""
    if not _is_real(value) or not math.isfinite(float(value)):
        raise InputError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    if abs(value) > REAL_MAX:
        raise InputError(f"{name} must lie between -{REAL_MAX:g} and {REAL_MAX:g}, got {value!r}")
    return value


def seed(value) -> int:
    """A non-negative integer seed (1e3 and 1.0 read as 1000 and 1, as counts and --depth 2.0 are)."""
    return count("seed", value, minimum=0)


def flag(name: str, value) -> bool:
    """A boolean (True/False, NumPy's too): a string such as "false" would read as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def choice(name: str, value, options: Sequence[str]) -> str:
    """value as one of options, whose spelling it returns: case and surrounding blanks do not count (NNGP is
    nngp), as for the built-in data sets' names."""
    key = value.strip().lower() if isinstance(value, str) else None
    if key not in options:
        raise InputError(f"unknown {name} {value!r} (choose from {', '.join(options)})")
    return key


def order(value) -> int:
    """A non-negative integer order (floats with an integer value are accepted)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(f"order must be a non-negative integer, got {value!r}")
    if value < 0:
        raise InputError(f"order must be a non-negative integer, got {value}")
    if value >= INT_MAX:  # 1e300 as an integer would print 300 digits in the next message
        raise InputError(f"order must be below 2**53, got {value:.3g}")
    return int(value)


def chi_ladder(chi) -> tuple[list[float], bool]:
    """(values, is_ladder) of one chi or a ladder: a number, a sequence, or a string '1,2,5,10'.
    A string with a comma or any sequence is a ladder (the result is then a list)."""
    if isinstance(chi, str):
        parts = [p.strip() for p in chi.split(",")]
        if not parts or any(p == "" for p in parts):
            raise InputError(f"--chi must be a number or a comma-separated list, got {chi!r}")
        if not all(is_number(p) for p in parts):
            raise InputError(f"--chi must be a number or a comma-separated list, got {chi!r}")
        vals = [from_text("chi", p) for p in parts]
        ladder = len(parts) > 1
    elif isinstance(chi, np.ndarray) and chi.ndim == 0:  # np.array(2.0) is one value, as 2.0 is
        vals, ladder = [chi.item()], False
    elif isinstance(chi, (Sequence, np.ndarray)):
        arr = np.asarray(chi, dtype=object)
        if arr.ndim != 1:  # [[1, 2]] flattened would hide a mistake
            raise InputError(f"chi must be a number or a flat list of numbers, got shape {arr.shape}")
        vals = list(arr)
        if not vals:
            raise InputError("chi ladder is empty")
        ladder = True
    else:
        vals, ladder = [chi], False
    return [chi_value(v) for v in vals], ladder


def chi_value(value) -> float:
    """One chi: any positive number is allowed (the contract); one beyond float64's headroom fails as a point
    (exit 3), not as bad input."""
    return positive("chi", value, bounds=CHI_RANGE)
