"""Data: validation of user arrays, .npz / .csv files and the built-in sets (docs/theory.md §8)."""
from .builtin import BUILTINS, ISING_SWEEPS, builtin, ising, teacher
from .files import load, load_csv, load_npz, save_npz
from .validate import Dataset, validate

__all__ = ["Dataset", "validate", "load_npz", "load_csv", "load", "save_npz", "ising", "teacher",
           "builtin", "BUILTINS", "ISING_SWEEPS"]
