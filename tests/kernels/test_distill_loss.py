"""kernels.distill.loss.soft_grad_ratio: the T^2 factor keeps the soft gradient's scale (Hinton et al. 2015)."""

import torch

from kernels.distill.loss import kd_loss, soft_grad_ratio
from kernels.distill.wrong import no_t_squared


def test_soft_grad_ratio_near_one_with_t_squared_and_about_inverse_square_without():
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(8, 10, generator=g, dtype=torch.float64), 3 * torch.randn(8, 10, generator=g).double()
    ys = torch.randint(0, 10, (8,), generator=g)
    assert 0.8 <= soft_grad_ratio(kd_loss, zs, zt, ys, 4.0, 16.0) <= 1.25
    assert abs(soft_grad_ratio(no_t_squared, zs, zt, ys, 4.0, 16.0) * 16 - 1) < 0.25
    assert not zs.requires_grad  # the logits passed in are left alone
