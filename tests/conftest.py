"""Test-wide setup.

Triton reads TRITON_INTERPRET when it is first imported, so it is set here, before any
test module can import triton, whenever no CUDA device is present: the kernels then run
in Triton's interpreter on CPU tensors.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
