"""State dicts named the way ``torchvision.models.resnet`` names a ResNet, without torchvision.

:func:`torchvision_resnet_state` writes a random basic-block ResNet state dict from
torchvision's naming rules (``torchvision/models/resnet.py``: ``conv1``, ``bn1``,
``layer{i}.{j}.conv1/bn1/conv2/bn2``, ``layer{i}.0.downsample.0/1`` where the shape
changes, ``fc``), not from ``models.convnets``, so loading it into
:class:`models.convnets.ResNet` with :func:`models.convnets.load_torchvision_weights`
tests the key mapping independently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from models.convnets import ResNet, ResNetConfig, load_torchvision_weights


def torchvision_resnet_state(
    layers: Sequence[int], widths: Sequence[int], num_classes: int, in_channels: int = 3, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A random torchvision-format state dict of a CIFAR-stem (3x3 conv1) basic-block ResNet.

    Args:
        layers: blocks per stage; widths: channels per stage (same length).
    Returns: name -> tensor, float32 weights and BN buffers, int64 ``num_batches_tracked``.
    """
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name: str, cout: int, cin: int, k: int) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=g)

    def bn(name: str, c: int) -> None:
        sd[f"{name}.weight"] = torch.rand(c, generator=g) + 0.5
        sd[f"{name}.bias"] = torch.randn(c, generator=g)
        sd[f"{name}.running_mean"] = torch.randn(c, generator=g)
        sd[f"{name}.running_var"] = torch.rand(c, generator=g) + 0.5
        sd[f"{name}.num_batches_tracked"] = torch.tensor(int(torch.randint(1, 10**6, (1,), generator=g)))

    conv("conv1", widths[0], in_channels, 3)  # the CIFAR stem: 3x3 (torchvision's is 7x7)
    bn("bn1", widths[0])
    cin = widths[0]
    for i, (n, w) in enumerate(zip(layers, widths)):
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            conv(f"{p}.conv1", w, cin, 3)
            bn(f"{p}.bn1", w)
            conv(f"{p}.conv2", w, w, 3)
            bn(f"{p}.bn2", w)
            if j == 0 and (i > 0 or cin != w):
                conv(f"{p}.downsample.0", w, cin, 1)
                bn(f"{p}.downsample.1", w)
            cin = w
    sd["fc.weight"], sd["fc.bias"] = torch.randn(num_classes, cin, generator=g), torch.randn(num_classes, generator=g)
    return sd


def check_torchvision_loading(ctx: Any, seed: int) -> None:
    """The check's part on loading torchvision-format weights (``cnn.transfer_learning``).

    Writes a torchvision-format state dict to ``ctx.workdir``, loads it into
    :class:`models.convnets.ResNet` and expects tensor-for-tensor equality, the 1000-class
    head skipped, a wrong shape and a missing key refused naming the key (through
    ``ctx.expect`` / ``ctx.expect_raises``, so a failure is a ``CheckFailed``).
    """
    layers, widths = (1, 2), (4, 8)
    sd = torchvision_resnet_state(layers, widths, num_classes=1000, seed=seed)
    path = ctx.workdir / "resnet_torchvision_format.pth"
    torch.save(sd, path)
    model = ResNet(ResNetConfig(layers=layers, widths=widths, num_classes=5))
    report = load_torchvision_weights(model, path)
    own = model.state_dict()
    wrong = [k for k, v in sd.items() if not k.startswith("fc.") and not torch.equal(own[k], v)]
    ctx.expect(
        not wrong and len(report["loaded"]) == len(sd) - 2,
        f"torchvision-format weights not loaded tensor for tensor: differ {wrong[:6]}, loaded "
        f"{len(report['loaded'])} of {len(sd) - 2}",
        name="torchvision-format weights load",
    )
    ctx.expect(
        report["skipped"] == ["fc.bias", "fc.weight"],
        f"head of 1000 classes not skipped: {report}",
        name="torchvision head of another size skipped",
    )
    bad = dict(sd, **{"layer1.0.conv1.weight": torch.zeros(4, 4, 5, 5)})
    ctx.expect_raises(
        ValueError,
        lambda: load_torchvision_weights(model, bad),
        match="layer1.0.conv1.weight",
        name="wrong shape names the key",
    )
    ctx.expect_raises(
        KeyError,
        lambda: load_torchvision_weights(model, {k: v for k, v in sd.items() if k != "bn1.running_var"}),
        match="bn1.running_var",
        name="missing key named",
    )
    x = torch.randn(2, 3, 8, 8)
    ctx.expect(tuple(model(x).shape) == (2, 5), "loaded ResNet does not run", name="loaded ResNet runs")
