"""Automatic differentiation by hand: custom Functions, a mini autodiff engine, hooks, checkpointing, gradcheck."""
