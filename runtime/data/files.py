"""Data files (docs/theory.md §8): .npz archives (keys X, y, optional X_test, y_test; no pickle)
and CSV files with a header (target column, optional split column)."""
from __future__ import annotations

import csv
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..values import from_text, is_number
from .validate import Dataset, fail, validate

def _existing_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise fail(f"data file not found: {p}")
    if not p.is_file():
        raise fail(f"data path is not a file: {p}")
    return p


def _spelling(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "").replace(" ", "")


def load_npz(path) -> Dataset:
    """Load an .npz archive with keys X, y (required) and X_test, y_test (optional), without
    pickle. Other keys are ignored, except near-misses of X_test and y_test (Xtest, x_test), refused."""
    p = _existing_file(path)
    try:
        archive = np.load(p, allow_pickle=False)
    except (PermissionError, IsADirectoryError) as err:  # the file is fine, reading it is not allowed
        raise fail(f"{p}: cannot be read ({err.strerror})") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error):
        raise fail(f"{p}: not a readable .npz archive (corrupt file or not written by numpy.savez)") from None
    if not hasattr(archive, "files"):  # a plain .npy array stored under a .npz name
        raise fail(f"{p}: holds a single .npy array, not an .npz archive with keys X and y")
    with archive:
        keys = list(archive.files)
        present = ", ".join(keys) if keys else "none"
        for key in ("X", "y"):
            if key not in keys:
                raise fail(f"{p}: required key '{key}' is missing (keys present: {present})")
        for key in ("X_test", "y_test"):
            near = [k for k in keys if k != key and _spelling(k) == _spelling(key)]
            if near and key not in keys:  # 'Xtest' would be ignored and the test points silently lost
                raise fail(f"{p}: key '{near[0]}' is not '{key}', the optional test key it resembles: rename it")
            if near:  # both: which one the user meant is not ours to guess
                raise fail(f"{p}: holds both '{key}' and '{near[0]}': keep one of them")
        arrays = {}
        for key in ("X", "y", "X_test", "y_test"):
            if key not in keys:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
                    raise fail(
                        f"{p}: array '{key}' holds Python objects (pickled data), which are not "
                        f"loaded for safety; save plain numeric arrays"
                    ) from None
                raise fail(f"{p}: array '{key}' could not be read ({exc})") from None
            except Exception as exc:  # corrupt zip member: BadZipFile, zlib.error, OSError, EOFError
                raise fail(f"{p}: array '{key}' could not be read (corrupt archive: {exc})") from None
    return validate(arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test"), name=str(p))


def _parse_float(cell: str, p: Path, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise fail(f"{p}: empty cell at line {line}, column '{column}'")
    if not is_number(text):
        raise fail(f"{p}: non-numeric value {text!r} at line {line}, column '{column}'")
    try:  # read as the options are: a non-zero cell below float64's smallest number does not become 0
        value = from_text(f"{p}: line {line}, column '{column}':", text)
    except InputError as err:
        raise fail(str(err)) from None
    if not math.isfinite(value):
        raise fail(f"{p}: non-finite value {text!r} at line {line}, column '{column}'")
    return value


def load_csv(path, target: str = "y") -> Dataset:
    """Load a CSV file with a header row. Column ``target`` is the target; an optional column
    ``split`` with values train/test (case-insensitive) marks test rows; every other column is an
    input. Blank lines are skipped. Test rows may leave the target empty (all of them), in which
    case ``y_test`` is None."""
    if not isinstance(target, str) or not target.strip():
        raise fail(f"target column name must be a non-empty string, got {target!r}")
    target = target.strip()
    p = _existing_file(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, skipinitialspace=True)  # `"x1", "x2"`: quoted names after ", "
            header = None
            rows: list[tuple[int, list[str]]] = []
            for row in reader:
                if not any(cell.strip() for cell in row):  # blank lines and spreadsheets' trailing ',,' rows
                    continue
                if header is None:
                    header = [cell.strip() for cell in row]
                else:
                    rows.append((reader.line_num, row))
    except UnicodeDecodeError:
        raise fail(f"{p}: not a UTF-8 text CSV file") from None
    except csv.Error as exc:
        raise fail(f"{p}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise fail(f"{p}: cannot be read ({exc.strerror or exc})") from None

    if header is None:
        raise fail(f"{p}: the CSV file is empty (a header row is required)")
    if all(is_number(cell) for cell in header):
        raise fail(f"{p}: the first row is numeric; a header row with column names is required")
    for position, column in enumerate(header, start=1):
        if not column:
            raise fail(f"{p}: header column {position} has an empty name")
    seen = set()
    for column in header:
        if column in seen:
            raise fail(f"{p}: duplicate column name '{column}' in the header")
        seen.add(column)
    if target not in header:
        other = [name for sep, name in (("\t", "tabs"), (";", "semicolons"), (" ", "spaces"))
                 if len(header) == 1 and sep in header[0]]
        if other:  # one column whose name holds another separator: not a comma-separated file
            raise fail(f"{p}: the header row has no commas but {other[0]}: msat reads comma-separated files")
        raise fail(f"{p}: target column '{target}' not found (columns: {', '.join(header)})")
    t_index = header.index(target)
    s_index = header.index("split") if ("split" in header and target != "split") else None
    inputs = [i for i in range(len(header)) if i != t_index and i != s_index]
    if not inputs:
        raise fail(f"{p}: no input columns (only '{target}'" + (" and 'split'" if s_index is not None else "") + ")")
    if not rows:
        raise fail(f"{p}: the CSV file has a header but no data rows")

    X_rows, y_rows, Xt_rows, yt_cells = [], [], [], []
    for line, row in rows:
        if len(row) != len(header):
            raise fail(f"{p}: line {line} has {len(row)} fields but the header has {len(header)}")
        is_test = False
        if s_index is not None:
            flag = row[s_index].strip().lower()
            if flag not in ("train", "test"):
                raise fail(
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
        raise fail(f"{p}: no training rows (every row has split = test)")

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
    raise fail(f"{p}: unsupported data file type '{p.suffix or '(no suffix)'}' (expected .npz or .csv)")


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
