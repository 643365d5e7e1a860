"""Self-supervised learning: SimCLR's NT-Xent, BYOL's EMA target and loss, digit views, linear probe."""
