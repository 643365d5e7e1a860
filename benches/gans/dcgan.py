"""7.02 DCGAN: Radford et al.'s architecture rules and initialisation.

Compared: the deep convolutional GAN of Radford, Metz & Chintala ("Unsupervised representation
learning with deep convolutional generative adversarial networks", arXiv:1511.06434, 2015) at
32x32, the CIFAR-10 size, against their Sec. 3 "approach and model architecture" and Sec. 4
"details of adversarial training": no pooling (strided convolutions in D, fractionally strided
in G); batch norm in every layer except G's output and D's input; ReLU in G with a tanh output;
LeakyReLU 0.2 in D; weights from N(0, 0.02); Adam with lr 2e-4 and beta1 0.5 ("the suggested
value of 0.9 resulted in training oscillation and instability"). CIFAR-10 comes only through
``--data-dir`` (the bench then trains in colour); otherwise, and always in the check, sklearn's
real 8x8 digits upsampled to 32x32, scored by the digits-feature FD once downsampled to 8x8.

Lesson: DCGAN turned GANs from a fragile MLP curiosity into a convolutional recipe that trains;
most of the recipe is the rules above. Published figure for scale: DCGAN's CIFAR-10 Inception
score of 6.16 (unsupervised, as tabulated by Gulrajani et al. 2017, "Improved Training of
Wasserstein GANs", Table 3; Radford et al. themselves report classification with D's
features). Not comparable with our FD: Inception-v3 on 50,000 CIFAR colour images versus a
digits classifier on upsampled 8x8 grey digits.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from harness import Prepared, TrainingRun, task
from harness import gan_train as gt
from harness.claims import metric
from harness.data.cifar_or_digits import cifar_or_digits, upsampled_digits
from harness.gan_metric import LABEL
from harness.mutants import Mutant
from kernels.gan import wrong
from models.gan import DCDiscriminator, DCGenerator, GanConfig, dcgan_init


@dataclasses.dataclass(frozen=True)
class DCConfig:
    """Width, batch and training length of the 32x32 DCGAN."""

    width: int = 16
    """ngf = ndf: channels of D's first layer and G's last hidden layer (Radford et al.: 128)"""
    z_dim: int = 100
    """noise dimension (Radford et al.: 100)"""
    batch: int = 64
    """images per step (Radford et al.: 128)"""
    steps: int = 150
    """D+G steps of the training run"""
    real_images: int = 50_000
    """bench: CIFAR-10 training images used when --data-dir has them (all 50,000 by default)"""


@task("gans.dcgan", seed="7.02", title="DCGAN for CIFAR-10")
class DCGan(TrainingRun):
    __doc__ = __doc__
    variants = ("train_step", "sample")
    sizes = {
        "tiny": DCConfig(width=8, steps=2),
        "cpu": DCConfig(),
        "gpu": DCConfig(width=128, batch=128, steps=2000),  # the paper's width and batch
    }
    metrics = {
        "digits_fd": LABEL + " (samples downsampled to 8x8)",
        "noise_fd": LABEL + " of uniform noise",
        "fd_vs_noise": "digits_fd / noise_fd (below 1: closer to digits than noise is)",
    }
    claims = (metric("fd_vs_noise", "<=", 0.5, text="after the short run, sample FD <= 0.5x that of noise"),)
    init = staticmethod(dcgan_init)
    discriminator_cls = DCDiscriminator
    betas = (0.5, 0.999)
    mutants = (
        Mutant("default_init", "PyTorch's default (Kaiming-uniform) init", {"init": wrong.no_init}, match="N(0, 0.02)"),
        Mutant(
            "bn_on_d_input",
            "batch norm on the discriminator's input layer",
            {"discriminator_cls": wrong.BNInputD},
            match="batch norm",
        ),
        Mutant("adam_beta1_09", "Adam with the default beta1 0.9", {"betas": (0.9, 0.999)}, match="Adam"),
    )

    def _build(self, cfg, device, seed, channels=1):
        torch.manual_seed(seed)
        gc = GanConfig(size=32, z_dim=cfg.z_dim, width=cfg.width, channels=channels)
        G, D = self.init(DCGenerator(gc)).to(device), self.init(self.discriminator_cls(gc)).to(device)
        return G, D, gt.adam(2e-4, G, betas=self.betas), gt.adam(2e-4, D, betas=self.betas)

    def check(self, ctx):
        cfg = ctx.configs[0]
        G, D, opt_g, opt_d = self._build(cfg, ctx.device, ctx.rng_seed)
        for who, net in (("G", G), ("D", D)):
            pools = [m for m in net.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d))]
            ctx.expect(not pools, f"{who} has pooling layers {pools}", name="no pooling")
            for name, m in net.named_modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() >= 2048:  # std measurable
                    s, mean = float(m.weight.detach().std()), float(m.weight.detach().mean())
                    normal = abs(s - 0.02) < 0.002 and abs(mean) < 0.004
                    ctx.expect(normal, f"{who}.{name} weights std {s:.4f}: not N(0, 0.02)", name="init N(0, 0.02)")
        g_out = [type(m) for m in G.modules() if isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d, nn.Tanh, nn.ReLU))]
        g_out_ok = g_out[-2:] == [nn.ConvTranspose2d, nn.Tanh]
        ctx.expect(g_out_ok, "G's output is not conv -> tanh (no BN)", name="G output: tanh, no batch norm")
        g_leaky = any(isinstance(m, nn.LeakyReLU) for m in G.modules())
        ctx.expect(not g_leaky, "G uses LeakyReLU; Radford et al. use ReLU", name="G: ReLU")
        d_seq = [m for m in D.modules() if not isinstance(m, (nn.Sequential, DCDiscriminator, nn.Identity))]
        d_in_ok = isinstance(d_seq[0], nn.Conv2d) and not isinstance(d_seq[1], nn.BatchNorm2d)
        d_in = f"D's input layer is followed by {type(d_seq[1]).__name__}: no batch norm on the input layer"
        ctx.expect(d_in_ok, d_in, name="D input: no batch norm")
        d_bn = any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
        ctx.expect(d_bn, "D has no batch norm at all", name="D: batch norm inside")
        slopes = {m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)}
        ctx.expect(slopes == {0.2}, f"D's LeakyReLU slopes {slopes}, want {{0.2}}", name="D: LeakyReLU 0.2")
        for hp in (opt_g.param_groups[0], opt_d.param_groups[0]):
            adam = f"Adam lr {hp['lr']}, betas {hp['betas']}: want 2e-4, beta1 0.5"
            ctx.expect(hp["lr"] == 2e-4 and hp["betas"][0] == 0.5, adam, name="Adam(2e-4, beta1 0.5)")
        real = upsampled_digits()[: cfg.batch].to(ctx.device)
        z = torch.randn(cfg.batch, cfg.z_dim, generator=ctx.generator()).to(ctx.device)
        before = [(net, gt.snapshot(net)) for net in (G, D)]
        d, g = gt.gan_step(G, D, opt_g, opt_d, real, z)
        ran = bool(torch.isfinite(d) and torch.isfinite(g)) and not any(gt.unchanged(b, net) for net, b in before)
        ctx.expect(ran, "a D+G step left NaN or did not move both nets", name="a training step runs")
        ctx.expect(tuple(G(z).shape) == (cfg.batch, 1, 32, 32), f"G output {tuple(G(z).shape)}", name="32x32 samples")

    def bench(self, ctx):
        cfg = ctx.configs[0]
        x, data = cifar_or_digits(cfg.real_images)
        G, D, opt_g, opt_d = self._build(cfg, ctx.device, ctx.rng_seed, channels=x.shape[1])
        hist = [
            gt.gan_step(G, D, opt_g, opt_d, real, torch.randn(cfg.batch, cfg.z_dim, device=ctx.device))
            for real in gt.minibatches(ctx.generator(1), cfg.steps, cfg.batch, x.to(ctx.device))
        ]
        gt.steps_curve(ctx, "GAN losses", [d for d, _ in hist], series="D loss", y_label="BCE loss")
        gt.steps_curve(ctx, "GAN losses", [g for _, g in hist], series="G loss", y_label="BCE loss")
        samples = gt.sample(G.eval(), 512, cfg.z_dim, ctx.generator(2))
        gt.grid(ctx, "samples", samples[:64], f"64 32x32 samples after {cfg.steps} steps ({data})")
        if x.shape[1] == 1:  # the digits-feature FD scores grey digits only
            noise = gt.noise_fd(ctx.generator(3), side=32)
            ctx.metric("noise_fd", noise)
            gt.record_fd(ctx, samples, noise)
        else:
            ctx.note(f"trained on {data}: no digits-feature FD (it scores grey digits); judge the sample grid")
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        G, D, opt_g, opt_d = self._build(config, ctx.device, ctx.rng_seed)
        real = upsampled_digits()[: config.batch].to(ctx.device)
        z = torch.randn(config.batch, config.z_dim, device=ctx.device)
        if impl == "sample":
            return gt.sampling(G, z)
        return Prepared(fn=lambda: gt.gan_step(G, D, opt_g, opt_d, real, z), items=1, item_unit="steps")
