"""Data-parallel building blocks: batch norm synchronised over ranks, DDP's bucket plan."""
