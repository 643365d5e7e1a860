"""4.10 transfer_learning: the check passes (mutants: test_mutants.py); torchvision-format
ResNet-18 weights written by this test load tensor for tensor."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import run_check
from models.convnets import ResNet, load_torchvision_weights

Task = REGISTRY.get("cnn.transfer_learning")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["margin_head_over_scratch"] >= 0.02
    series = {c["series"] for c in rec.curves if c["name"] == "test accuracy"}
    assert series == {"pretrain (digits 0-4)", "scratch", "finetune_head", "finetune_full", "random_frozen"}


def torchvision_resnet18_state():
    """Key names and shapes of torchvision.models.resnet18().state_dict()
    (torchvision/models/resnet.py: conv1 7x7/2, bn1, layer1-4 of two BasicBlocks with a
    1x1 downsample (conv, bn) in the first block of layers 2-4, fc 512 -> 1000)."""
    g = torch.Generator().manual_seed(0)
    sd = {}

    def bn(p, c):
        for k in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{p}.{k}"] = torch.rand(c, generator=g) + 0.1
        sd[f"{p}.num_batches_tracked"] = torch.tensor(7)

    sd["conv1.weight"] = torch.randn(64, 3, 7, 7, generator=g)
    bn("bn1", 64)
    cin = 64
    for i, w in enumerate((64, 128, 256, 512), start=1):
        for b in range(2):
            p = f"layer{i}.{b}"
            sd[f"{p}.conv1.weight"] = torch.randn(w, cin if b == 0 else w, 3, 3, generator=g)
            bn(f"{p}.bn1", w)
            sd[f"{p}.conv2.weight"] = torch.randn(w, w, 3, 3, generator=g)
            bn(f"{p}.bn2", w)
            if b == 0 and i > 1:
                sd[f"{p}.downsample.0.weight"] = torch.randn(w, cin, 1, 1, generator=g)
                bn(f"{p}.downsample.1", w)
        cin = w
    sd["fc.weight"] = torch.randn(1000, 512, generator=g)
    sd["fc.bias"] = torch.randn(1000, generator=g)
    return sd


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tv") / "resnet18-torchvision-format.pth"
    sd = torchvision_resnet18_state()
    torch.save(sd, path)
    return path, sd


def test_torchvision_resnet18_file_loads_tensor_for_tensor(resnet18_file):
    path, sd = resnet18_file
    assert len(sd) == 122  # len(torchvision.models.resnet18().state_dict())
    model = ResNet("resnet18")
    report = load_torchvision_weights(model, path)
    assert report["skipped"] == [] and len(report["loaded"]) == 122
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in sd.items())
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_other_head_size_is_skipped_and_wrappers_are_accepted(resnet18_file, tmp_path):
    path, sd = resnet18_file
    wrapped = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 90}, wrapped)
    model = ResNet(ResNet("resnet18").config.__class__(**{**ResNet("resnet18").config.__dict__, "num_classes": 10}))
    report = load_torchvision_weights(model, wrapped)
    assert report["skipped"] == ["fc.bias", "fc.weight"]
    assert torch.equal(model.state_dict()["layer4.1.bn2.running_var"], sd["layer4.1.bn2.running_var"])


def test_mismatches_name_the_key(resnet18_file):
    _, sd = resnet18_file
    with pytest.raises(KeyError, match="layer3.0.downsample.0.weight"):
        load_torchvision_weights(ResNet("resnet18"), {k: v for k, v in sd.items() if "layer3.0.downsample.0" not in k})
    with pytest.raises(ValueError, match="conv1.weight"):
        load_torchvision_weights(ResNet("resnet18"), {**sd, "conv1.weight": torch.zeros(64, 3, 3, 3)})
    with pytest.raises(KeyError, match="same architecture"):
        load_torchvision_weights(ResNet("resnet50"), sd)  # bottleneck blocks: conv3/bn3 missing
