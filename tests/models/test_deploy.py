"""models.deploy.ConvNetConfig: the seeded CNN and input batch the deployment tasks build."""

import torch

from models.deploy import ConvNetConfig


def test_build_is_seeded_shaped_and_in_the_mode_asked():
    cfg = ConvNetConfig(width=4, image=6, batch=3)
    (m1, x1), (m2, x2) = cfg.build(7, torch.Generator().manual_seed(1)), cfg.build(7, torch.Generator().manual_seed(1))
    assert x1.shape == (3, 1, 6, 6) and x1.dtype == torch.float32 and m1.training
    torch.testing.assert_close(x1, x2)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    m3, x3 = cfg.build(7, batch=5, train=False)
    assert not m3.training and x3.shape == (5, 1, 6, 6) and m3(x3).shape == (5, 10)
    assert cfg.label() == "w=4,img=6,B=3"
