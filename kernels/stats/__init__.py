"""Statistics of repeated runs by hand: mean, spread, t- and bootstrap confidence intervals."""
