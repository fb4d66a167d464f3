"""Memory a request needs, checked before allocating: a request that cannot fit is refused with
one line (what it needs, what is available, what would fit) instead of swapping or being killed."""
from __future__ import annotations

import os

from .errors import InputError

#: bytes per float64
F8 = 8


def available() -> int:
    """Bytes of memory available to this process now (MemAvailable on Linux; total physical memory
    elsewhere)."""
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
    """Raise InputError when ``needed`` bytes exceed the memory available."""
    have = available()
    if needed > have:
        hint = f"; {fits}" if fits else ""
        raise InputError(f"{what} needs about {_size(needed)} of memory but {_size(have)} are available{hint}")
