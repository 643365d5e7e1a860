"""Wrong cast policies: the mutants of m2.manual_amp (each one a plausible mistake).

Each is :mod:`kernels.amp.policy`'s right policy with one op in the wrong list, and SOFTMAX, LINEAR,
LAYER_NORM the task's ``{device type: policy}`` map with that one swapped in; the task's check
(``ManualAutocast`` against ``torch.autocast`` op by op) must catch each one
(``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import dataclasses

from kernels.amp.policy import CPU_BF16_POLICY, CUDA_FP16_POLICY

#: WRONG: softmax cast to bfloat16 on CPU (autocast leaves it alone there).
SOFTMAX_LOW = dataclasses.replace(CPU_BF16_POLICY, lower_precision_fp=CPU_BF16_POLICY.lower_precision_fp | {"softmax"})

#: WRONG: linear left in float32 on CPU (autocast casts it down).
LINEAR_FP32 = dataclasses.replace(CPU_BF16_POLICY, lower_precision_fp=CPU_BF16_POLICY.lower_precision_fp - {"linear"})

#: WRONG: layer_norm in float16 on CUDA (autocast runs it in float32 there).
CUDA_LN_LOW = dataclasses.replace(
    CUDA_FP16_POLICY,
    fp32=CUDA_FP16_POLICY.fp32 - {"layer_norm"},
    lower_precision_fp=CUDA_FP16_POLICY.lower_precision_fp | {"layer_norm"},
)

#: the task's policy maps, {device type: policy}, each with one wrong policy swapped in
SOFTMAX = {"cpu": SOFTMAX_LOW, "cuda": CUDA_FP16_POLICY}
LINEAR = {"cpu": LINEAR_FP32, "cuda": CUDA_FP16_POLICY}
LAYER_NORM = {"cpu": CPU_BF16_POLICY, "cuda": CUDA_LN_LOW}
