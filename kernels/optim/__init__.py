"""Optimizers, their update math, learning-rate schedules, clipping and weight decay, written by hand."""
