"""Layers and losses by hand: attention, batch norm, convolution, dropout, positional encodings, losses."""
