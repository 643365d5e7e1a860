"""4.05 Grad-CAM.

Compared: two ways to compute Grad-CAM maps (``kernels/vision/gradcam.py``; Selvaraju et al.,
ICCV 2017, eqs. 1-2: alpha_k = spatial mean of d y^c / d A_k, map = ReLU(sum_k alpha_k A_k))
for a batch: ``per_image`` (the baseline: one forward and one backward per image, as most
tutorials do) and ``batched`` (one forward and one backward for the whole batch: image n's
score depends only on image n in eval mode, so d(sum_n y_n)/dA_n = d y_n / d A_n).

Reference (the "hand computation"): for a head that is global average pooling + Linear
after the target layer, d y^c / d A_k[i, j] = W[c, k] / (h*w), so the map is
ReLU(sum_k W[c, k] / (h*w) * A_k) with no autograd at all; for a flatten + Linear head,
alpha_k = mean_ij W[c, k, i, j]. Checked on a GAP-head CNN, a flatten-head CNN and a CIFAR
ResNet (its last stage feeds avgpool + fc), 3 seeds, float32 tolerance.

Also checked: a planted discriminative region is highlighted. A tiny CNN (two 3x3 convs,
no downsampling, GAP head) is trained until it separates 16x16 noise images (class 0)
from the same noise with a bright 4x4 patch at a random place (class 1); on held-out
class-1 images the argmax of the map lies inside the patch for >= 90% of them, and the
map's mean inside the patch is several times its mean outside (both recorded).

Bench: time per map (ms) and maps/s of both implementations, on the tiny CNN and on a
CIFAR ResNet-20 at 32x32.

Lesson: Grad-CAM needs one backward pass per batch, not per image: the per-image loop pays
the fixed cost of a forward/backward N times. The ReLU and the spatial averaging both
matter: without the ReLU, features that vote against the class paint the map, and with
summed instead of averaged gradients the map is scaled by h*w.

How much batching buys depends on how much of a call is fixed cost: for a small CNN
nearly all of it, for a ResNet-20 at 32x32 much less (the claims state both). The card
shows the maps of the planted-patch net over their inputs.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Operator, impl, task
from harness.claims import metric, speedup
from harness.data.planted import planted_patch_images
from harness.mutants import replace_impl
from harness.train import fit
from kernels.vision.gradcam import grad_cam, grad_cam_per_image
from models.convnets import ResNet, ResNetConfig, SmallCNN, SmallCNNConfig


@dataclasses.dataclass(frozen=True)
class CamConfig:
    """Network and batch for which the maps are computed."""

    net: str = "gap"
    """'gap' (SmallCNN, GAP head), 'flatten' (SmallCNN, flatten head) or 'resnet' (CIFAR ResNet)"""
    n: int = 4
    """images (maps) per call"""
    image_size: int = 12
    """image side in pixels"""
    channels: tuple[int, ...] = (4, 6)
    """SmallCNN stage widths, or ResNet stage widths"""
    layers: tuple[int, ...] = (1, 1)
    """ResNet blocks per stage (ignored for SmallCNN)"""

    def label(self) -> str:
        return f"{self.net},{self.n}x3x{self.image_size}x{self.image_size},widths={self.channels}"


def build(config: CamConfig):
    """(model in eval mode, target layer)."""
    if config.net == "resnet":
        m = ResNet(ResNetConfig(layers=config.layers, widths=config.channels))
        return m.eval(), m.stages()[-1]
    cfg = SmallCNNConfig(3, image_size=config.image_size, channels=config.channels, head=config.net, batch_norm=True)
    m = SmallCNN(cfg)
    return m.eval(), m.features


def head_of(model) -> tuple[torch.Tensor, str]:
    """(final Linear weight, 'gap' or 'flatten') of a net built by :func:`build`."""
    if isinstance(model, ResNet):
        return model.fc.weight, "gap"
    return model.head[-1].weight, model.config.head


def hand_cam(model, layer, x, classes):
    """Grad-CAM without autograd, from the head's weights (see the module docstring)."""
    acts = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: acts.__setitem__("a", out))
    with torch.no_grad():
        model(x)
    handle.remove()
    a = acts["a"]  # (N, K, h, w)
    n, k, h, w = a.shape
    head_w, head = head_of(model)
    weight = head_w[classes]  # (N, K) or (N, K*h*w)
    if head == "gap":
        alpha = weight / (h * w)  # d y / d A_kij = W[c, k] / (h*w), the same at every (i, j)
    else:
        alpha = weight.view(n, k, h, w).mean(dim=(2, 3))  # (N, K)
    return torch.relu((alpha[:, :, None, None] * a).sum(dim=1))  # (N, h, w)


# -- wrong versions (mutants): batched / per_image replaced -------------------------------


def _acts_and_grads(model, layer, x, classes):
    store = {}
    h = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
    with torch.enable_grad():
        logits = model(x)
        h.remove()
        (g,) = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), store["a"])
    return store["a"].detach(), g  # (N, K, h, w) each


def _no_relu(self, model, layer, x, classes):
    def run():
        a, g = _acts_and_grads(model, layer, x, classes)
        return (g.mean(dim=(2, 3))[:, :, None, None] * a).sum(1)

    return run


def _summed_grads(self, model, layer, x, classes):
    def run():
        a, g = _acts_and_grads(model, layer, x, classes)
        return torch.relu((g.sum(dim=(2, 3))[:, :, None, None] * a).sum(1))

    return run


def _inverted(self, model, layer, x, classes):
    def run():
        cam = grad_cam(model, layer, x, classes)
        return cam.amax(dim=(1, 2), keepdim=True) - cam

    return run


@task("cnn.grad_cam", seed="4.05", title="Grad-CAM")
class GradCAM(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [CamConfig(), CamConfig(net="flatten", image_size=8), CamConfig(net="resnet", image_size=10)],
        "cpu": [
            CamConfig(n=32, image_size=16, channels=(8, 16)),
            CamConfig(net="resnet", n=16, image_size=32, channels=(16, 32, 64), layers=(3, 3, 3)),
        ],
        "gpu": [
            CamConfig(n=256, image_size=16, channels=(8, 16)),
            CamConfig(net="resnet", n=256, image_size=32, channels=(16, 32, 64), layers=(3, 3, 3)),
        ],
    }
    metrics = {"planted_patch_argmax_hit_rate": "share of held-out class-1 images whose map peaks in the patch"}
    claims = (
        speedup("batched", over="per_image", at_least=5, config="gap,", text="Grad-CAM batched >= 5x: small CNN"),
        speedup("batched", over="per_image", at_least=1.2, config="resnet", text="Grad-CAM batched >= 1.2x: ResNet-20"),
        metric("planted_patch_argmax_hit_rate", ">=", 0.9, text="the map peaks inside the planted patch >= 90 %"),
    )
    mutants = (
        replace_impl("no_relu", "maps without the ReLU", "batched", _no_relu),
        replace_impl("summed_gradients", "gradients summed, not averaged", "batched", _summed_grads),
        replace_impl("inverted_map", "max - map", "batched", _inverted),
        replace_impl(
            "predicted_class",
            "maps of the predicted, not the requested class",
            "per_image",
            lambda self, m, layer, x, c: lambda: grad_cam_per_image(m, layer, x, None),
        ),
    )

    def inputs(self, config, device, dtype, seed):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model, layer = build(config)
            for m in model.modules():  # non-trivial BN statistics, so eval-mode BN is not the identity
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    torch.nn.init.normal_(m.bias, 0, 0.2)
            x = torch.randn(config.n, 3, config.image_size, config.image_size)
            classes = torch.randint(0, 10, (config.n,))
        return model.to(device, dtype), layer, x.to(device, dtype), classes.to(device)

    def reference(self, model, layer, x, classes):
        return hand_cam(model, layer, x, classes)

    def items(self, config):
        return config.n, "maps"

    @impl(baseline=True)
    def per_image(self, model, layer, x, classes):
        return lambda: grad_cam_per_image(model, layer, x, classes)

    @impl
    def batched(self, model, layer, x, classes):
        return lambda: grad_cam(model, layer, x, classes)

    def planted(self, ctx, picture: bool):
        """Train a net to find a planted patch; (hit rate, mean map inside / outside, accuracy)."""
        size, patch = 16, 4
        x, y, corners = planted_patch_images(768, size, patch, ctx.generator(7))
        x, y = x.to(ctx.device, ctx.dtype), y.to(ctx.device)
        with torch.random.fork_rng():
            torch.manual_seed(ctx.rng_seed)
            cfg = SmallCNNConfig(
                in_channels=1, image_size=size, channels=(8, 8), pool="none", head="gap", num_classes=2
            )
            model = SmallCNN(cfg).to(ctx.device, ctx.dtype)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        log = fit(
            model, opt, (x[:512], y[:512]), batch_size=32, epochs=5, eval_data=(x[512:], y[512:]), seed=ctx.rng_seed
        )
        log.record(ctx, series="planted-patch net")
        model.eval()
        test = torch.nonzero(y[512:] == 1).flatten() + 512
        cams = self.batched(model, model.features, x[test], y[test])()  # (M, 16, 16): no downsampling
        inside = torch.zeros(len(test), size, size, dtype=torch.bool, device=cams.device)
        for j, i in enumerate(test.tolist()):
            r, c = corners[i].tolist()
            inside[j, r : r + patch, c : c + patch] = True
        peak = cams.flatten(1).argmax(dim=1)  # (M,)
        hit = inside.flatten(1).gather(1, peak[:, None]).float().mean().item()
        ratio = ((cams * inside).sum() / inside.sum() / ((cams * ~inside).sum() / (~inside).sum())).item()
        ctx.metric("planted_patch_argmax_hit_rate", hit)
        ctx.metric("planted_patch_mean_inside_over_outside", ratio)
        if picture:  # 8 held-out inputs over their maps, each map scaled to its own maximum
            maps = cams[:8] / cams[:8].amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
            grid = torch.cat([x[test[:8]].cpu(), maps[:, None].cpu()])  # (16, 1, 16, 16)
            cap = "top: held-out images with a planted bright patch; bottom: their Grad-CAM maps"
            ctx.image("Grad-CAM over its inputs", grid, nrow=8, vmin=0.0, vmax=1.0, caption=cap)
        return hit, log.final_accuracy, len(test)

    def extra_checks(self, ctx):
        hit, acc, n = self.planted(ctx, picture=True)
        why = f"planted-patch net reached only {acc:.3f} test accuracy (needs 0.9 before its maps mean anything)"
        ctx.expect(acc >= 0.9, why, name="planted-patch net learns")
        why = f"the map's argmax lies inside the planted patch for only {hit:.0%} of {n} images (needs 90%)"
        ctx.expect(hit >= 0.9, why, name="highlights the planted region")

    def bench(self, ctx):
        for config in ctx.configs:
            for spec in ctx.implementations(self, bench=True):
                m = ctx.measure(spec.name, self.prepare(ctx, spec.name, config), config=config)
                ctx.record.measurements[-1]["ms_per_map"] = float(f"{m.median_ms / config.n:.4g}")
        self.planted(ctx, picture=True)
