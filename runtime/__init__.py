"""msat.runtime: data, solvers, exact references and the CLI (numbers only; no SymPy on the hot path)."""
