"""Test-wide setup.

Triton reads TRITON_INTERPRET when it is first imported, so it is set here, before any
test module can import triton, whenever no CUDA device is present: the kernels then run
in Triton's interpreter on CPU tensors.
"""

import os
import tempfile

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Peaks measured by CLI runs inside tests go to a scratch folder, never into results/peaks
# (a peak measured while the suite loads the machine is not this machine's peak). Workers
# and subprocesses inherit the variable.
os.environ.setdefault("DRILLS_PEAKS_DIR", tempfile.mkdtemp(prefix="drills-test-peaks-"))
