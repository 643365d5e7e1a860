"""Sharded data parallelism: optimizer-state accounting, mixed-precision Adam and ZeRO's memory formula."""
