"""msat.derive: SymPy derivations (actions, loop expansion, observables), emission and LaTeX."""
