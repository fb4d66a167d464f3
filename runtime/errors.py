"""Errors with a meaning for the user: exit code 2 (bad input) and 3 (solver failed)."""
from __future__ import annotations


class MsatError(Exception):
    """Base class; ``exit_code`` is what the CLI returns. The message is one line for stderr."""

    exit_code = 1
    #: a message quoting the user's value (its repr: a pandas Series, a 2-d array) is cut to this length
    LONGEST = 400

    def __init__(self, message="", *args):
        # one line whatever the message quotes: a repr spans lines, and stderr gets one line per error
        text = " ".join(str(message).split())
        super().__init__(text if len(text) <= self.LONGEST else text[:self.LONGEST - 3] + "...", *args)


class InputError(MsatError, ValueError):
    """The user's data or parameters are invalid (CLI exit code 2)."""

    exit_code = 2


class MemoryRequestError(InputError):
    """A request that would need more memory than is available (exit code 2, refused before allocating)."""


class MsatWarning(UserWarning):
    """What a result of the Python API warns of (its `warnings`, a point that did not converge), raised as a
    Python warning so that a notebook shows it; the CLI prints the same lines on stderr instead."""


class ConvergenceError(MsatError, RuntimeError):
    """A solver did not converge; ``diagnostics`` says how far it got (CLI exit code 3)."""

    exit_code = 3
    #: msat's own words, which quote no user value: cut only far out (an outside audit: at 400 characters a
    #: cold start's failure lost its reason's remedy mid-word)
    LONGEST = 4000

    def __init__(self, message: str, diagnostics: dict | None = None):
        super().__init__(message)
        self.diagnostics = dict(diagnostics or {})


def missing_generated(err: BaseException) -> str | None:
    """The one line for a generated module that the installed generated/ lacks (an incomplete or damaged emission:
    an outside audit had an order-3 loop end in 'internal error' without rescaling_o4, which its truncation check
    reads), or None for any other error."""
    name = getattr(err, "name", None) or ""
    remedy = ("`msat derive --check` names what differs from what derive/ emits, and `msat derive` with the order "
              "and depth MANIFEST records emits it again")
    if isinstance(err, ModuleNotFoundError) and name.startswith("msat.generated."):
        return f"generated/ lacks {name.rsplit('.', 1)[1]}.py, which this request needs: {remedy}"
    if isinstance(err, AttributeError) and str(err).startswith("module 'msat.generated"):
        # an emptied or truncated module (a review: rescaling_o2.py emptied gave 'internal error', exit 1)
        return f"generated/ is damaged ({err}): {remedy}"
    return None
