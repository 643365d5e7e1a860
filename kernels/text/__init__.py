"""Sequence decoding (greedy, beam, sampling) and sequence-labelling metrics."""
