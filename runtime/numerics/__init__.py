"""Numerical plumbing the methods share: root finders, structured solvers, Monte Carlo loops,
contractions with eigenvectors. Every number a formula defines comes from msat.generated."""
