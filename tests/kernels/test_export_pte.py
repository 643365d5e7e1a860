"""kernels.export.pte without ExecuTorch: what a lowering left outside its delegate, and the
runtime's refusal turned into a message even when the runtime's error is empty."""

import pytest
import torch

from kernels.export.pte import Lowered, PteModule


def test_left_out_names_only_the_heavy_operators_outside_the_delegate():
    lo = Lowered(b"", 1, {"aten.convolution.default": 2, "aten.relu.default": 3, "aten.addmm.default": 1})
    assert lo.left_out() == {"aten.convolution.default": 2, "aten.addmm.default": 1}
    assert lo.left_out(["relu"]) == {"aten.relu.default": 3}


class _Refuses:  # stands in for the loaded method: refuses any input with an empty RuntimeError
    def execute(self, inputs):
        raise RuntimeError()

    class metadata:
        @staticmethod
        def input_tensor_meta(i):
            return type("Meta", (), {"sizes": staticmethod(lambda: (2, 3))})()


def test_a_refusal_with_an_empty_message_still_names_the_planned_shape():
    pte = object.__new__(PteModule)  # no program: the runtime is not needed for the message
    pte.method = _Refuses()
    with pytest.raises(ValueError, match=r"planned for input shape \(2, 3\) and refuses \(5, 3\) \(RuntimeError\)"):
        pte(torch.zeros(5, 3))
