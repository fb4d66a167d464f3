"""How many independent draw sets a Monte Carlo error of erf/relu kernel adaptation rests on (docs/cli.md,
docs/theory.md §6): the spread of R sets over sqrt(R), so (estimate - truth) / error follows Student's t with
R - 1 degrees of freedom. Counts only, with no imports, so that runtime.params and runtime.memory read them
without loading the Monte Carlo machinery."""

#: independent sets behind an error (the single-neuron saddle's final draws, the cumulant estimator's prior
#: blocks, the field loop's sets, the deep chain's replicates): eight give t_7, |z| > 4 for 0.5% of outputs
#: (four gave t_3: 2.8%) at the same total draws
REPLICATES = 8
#: ... each of at least MIN_SET draws; fewer draws in all take fewer sets, down to MIN_REPLICATES
MIN_SET, MIN_REPLICATES = 500, 4
#: the deep chain's draws per replicate set, at least (its importance sums over fewer say nothing)
DEEP_MIN_SET = 100


def replicate_sets(total: int) -> int:
    """How many independent sets `total` draws are split into: REPLICATES, or as many of MIN_SET draws as
    they make, at least MIN_REPLICATES (runtime.params refuses fewer than MIN_REPLICATES * MIN_SET)."""
    return int(max(MIN_REPLICATES, min(REPLICATES, int(total) // MIN_SET)))
