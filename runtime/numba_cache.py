"""Where numba keeps the compiled kernels (cache=True, docs/architecture.md): beside their modules, else in
its user-wide folder. Where neither can be written (a read-only install and a read-only home, as in some
containers) numba raised at import ("cannot cache function ...: no locator available"), before msat could say
anything; a private folder under the system's temporary directory is used then."""
from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the folder holding generated/ and runtime/ (a clone or site-packages)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def ensure_writable() -> None:
    """Point NUMBA_CACHE_DIR at a private temporary folder where numba has nowhere to write (no-op when it is
    set, when numba is already imported, or when the package or the user cache folder can be written; the
    latter is numba's folder on Linux, elsewhere a close guess)."""
    if "NUMBA_CACHE_DIR" in os.environ or "numba" in sys.modules:
        return
    if all(_writable(ROOT / sub / "__pycache__") for sub in ("generated", "runtime/numerics")):
        return
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"
    if _writable(user):
        return
    os.environ["NUMBA_CACHE_DIR"] = str(_private())


def _private() -> Path:
    """A folder of this user's alone under the temporary directory: numba loads what it finds in its cache, so a
    folder another user made first (or a link to one) is not used; a fresh one is made instead."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    folder = Path(tempfile.gettempdir()) / f"msat-numba-{uid if uid is not None else 'user'}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
        own = uid is None or (st.st_uid == uid and not stat.S_ISLNK(st.st_mode) and not st.st_mode & 0o077)
        if own and _writable(folder):
            return folder
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="msat-numba-"))
