"""Data loading: wrong prefetchers and data sets, the mutants of the m6 loader drills."""
