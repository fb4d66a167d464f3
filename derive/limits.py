"""How far `msat derive` and `msat latex` go (no SymPy here: the commands and the emitted registry read them)."""

#: the highest loop order derive and latex accept: the derivation's cost grows about fourfold per order
#: (measured, single layer: `msat latex --order 5` 6 s, `--order 6` 23 s), so order 9 would take hours
MAX_ORDER = 8
#: the highest --depth derive emits (depth 10 takes ~30 s; a typo such as --depth 99 ran for over five minutes)
MAX_DEPTH = 10
