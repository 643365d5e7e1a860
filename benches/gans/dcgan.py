"""7.02 DCGAN: Radford et al.'s architecture rules and initialisation.

Compared: the deep convolutional GAN of Radford, Metz & Chintala ("Unsupervised
representation learning with deep convolutional generative adversarial networks",
arXiv:1511.06434, 2015) at 32x32, the CIFAR-10 size. CIFAR-10 comes only through
``--data-dir``; the CPU presets train on sklearn's real 8x8 digits upsampled to 32x32
(bilinear), so the check stays offline, and score samples with the digits-feature FD after
area-downsampling them back to 8x8.

Check (their Sec. 3 "approach and model architecture" and Sec. 4 "details of adversarial
training"): no pooling layers (strided convolutions in D, fractionally strided in G);
batch norm in every layer except G's output and D's input; ReLU in G with a tanh output;
LeakyReLU with slope 0.2 in D; conv and linear weights drawn from N(0, 0.02) (measured std
within 10 % of 0.02, BN scales near 1); Adam with lr 2e-4 and beta1 0.5 ("the suggested
value of 0.9 resulted in training oscillation and instability"); one D+G step runs and moves
both nets.

Bench: D+G steps/s and samples/s; a short training run records the losses, a sample grid and
the digits-feature FD (not comparable to published FID or Inception scores).

Lesson: DCGAN turned GANs from a fragile MLP curiosity into a convolutional recipe that
trains; most of the recipe is the rules above. Published figure for scale: DCGAN's CIFAR-10
Inception score of 6.16 (unsupervised, as tabulated by Salimans et al. 2016, "Improved
techniques for training GANs", and later papers; Radford et al. themselves report
classification with D's features). Not comparable with our FD: Inception-v3 on 50,000 CIFAR
colour images versus a digits classifier on upsampled 8x8 grey digits. With CIFAR-10's python
batches under ``--data-dir`` the bench trains on them in colour (the check stays on digits).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.cifar import load_cifar10
from harness.data.sources import resolve
from harness.gan_metric import LABEL, digits_fd, digits_images
from harness.mutants import Mutant
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


def _upsampled_digits():
    x = digits_images()[0]
    return F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)  # (1797, 1, 32, 32)


def _bench_images(n: int) -> tuple[torch.Tensor, str]:
    """The bench's training images in [-1, 1]: real CIFAR-10 (N, 3, 32, 32) when its python batches
    are under --data-dir (``cifar10/``), else the upsampled digits (N, 1, 32, 32)."""
    src = resolve("cifar10")
    if src.kind == "files" and src.path is not None:
        imgs = load_cifar10(src.path, "train").images[:n]  # uint8 (N, 3, 32, 32)
        return imgs.float() / 127.5 - 1, f"CIFAR-10 ({len(imgs):,} training images at {src.path})"
    return _upsampled_digits(), "digits upsampled"


class _BNInputD(DCDiscriminator):  # wrong: batch norm on D's input layer
    def __init__(self, cfg):
        super().__init__(cfg)
        self.body[1] = nn.Sequential(nn.BatchNorm2d(cfg.width), nn.LeakyReLU(0.2))


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
        Mutant(
            "default_init",
            "PyTorch's default (Kaiming-uniform) init",
            {"init": staticmethod(lambda m: m)},
            match="N(0, 0.02)",
        ),
        Mutant(
            "bn_on_d_input",
            "batch norm on the discriminator's input layer",
            {"discriminator_cls": _BNInputD},
            match="batch norm",
        ),
        Mutant("adam_beta1_09", "Adam with the default beta1 0.9", {"betas": (0.9, 0.999)}, match="Adam"),
    )

    def _build(self, cfg, device, channels=1):
        gc = GanConfig(size=32, z_dim=cfg.z_dim, width=cfg.width, channels=channels)
        G = self.init(DCGenerator(gc)).to(device)
        D = self.init(self.discriminator_cls(gc)).to(device)
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=self.betas)
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=self.betas)
        return G, D, opt_g, opt_d

    def _step(self, G, D, opt_g, opt_d, real, z):
        ones, zeros = torch.ones(real.shape[0], device=real.device), torch.zeros(real.shape[0], device=real.device)
        fake = G(z)  # (N, 1, 32, 32)
        opt_d.zero_grad(set_to_none=True)
        d = F.binary_cross_entropy_with_logits(D(real), ones) + F.binary_cross_entropy_with_logits(
            D(fake.detach()), zeros
        )
        d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        g = F.binary_cross_entropy_with_logits(D(fake), ones)  # non-saturating
        g.backward()
        opt_g.step()
        return d.detach(), g.detach()

    def check(self, ctx):
        cfg = ctx.configs[0]
        torch.manual_seed(ctx.rng_seed)
        G, D, opt_g, opt_d = self._build(cfg, ctx.device)
        for net, who in ((G, "G"), (D, "D")):
            pools = [m for m in net.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d))]
            ctx.expect(not pools, f"{who} has pooling layers {pools}", name="no pooling")
        g_layers = [m for m in G.modules() if isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d, nn.Tanh, nn.ReLU))]
        ctx.expect(
            isinstance(g_layers[-1], nn.Tanh) and isinstance(g_layers[-2], nn.ConvTranspose2d),
            "G's output is not conv -> tanh (no BN)",
            name="G output: tanh, no batch norm",
        )
        ctx.expect(
            not any(isinstance(m, nn.LeakyReLU) for m in G.modules()),
            "G uses LeakyReLU; Radford et al. use ReLU",
            name="G: ReLU",
        )
        d_seq = [m for m in D.modules() if not isinstance(m, (nn.Sequential, DCDiscriminator, nn.Identity))]
        ctx.expect(
            isinstance(d_seq[0], nn.Conv2d) and not isinstance(d_seq[1], nn.BatchNorm2d),
            f"D's input layer is followed by {type(d_seq[1]).__name__}: no batch norm on the input layer",
            name="D input: no batch norm",
        )
        ctx.expect(
            sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) >= 1,
            "D has no batch norm at all",
            name="D: batch norm inside",
        )
        slopes = {m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)}
        ctx.expect(slopes == {0.2}, f"D's LeakyReLU slopes {slopes}, want {{0.2}}", name="D: LeakyReLU 0.2")
        for net, who in ((G, "G"), (D, "D")):
            for name, m in net.named_modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() >= 2048:
                    s = float(m.weight.detach().std())
                    ctx.expect(
                        abs(s - 0.02) < 0.002 and abs(float(m.weight.detach().mean())) < 0.004,
                        f"{who}.{name} weights std {s:.4f}: not N(0, 0.02)",
                        name="init N(0, 0.02)",
                    )
        for opt in (opt_g, opt_d):
            hp = opt.param_groups[0]
            ctx.expect(
                hp["lr"] == 2e-4 and hp["betas"][0] == 0.5,
                f"Adam lr {hp['lr']}, betas {hp['betas']}: want 2e-4, beta1 0.5",
                name="Adam(2e-4, beta1 0.5)",
            )
        real = _upsampled_digits()[: cfg.batch].to(ctx.device)
        z = torch.randn(cfg.batch, cfg.z_dim, generator=ctx.generator()).to(ctx.device)
        before = [p.detach().clone() for p in (*G.parameters(), *D.parameters())]
        d, g = self._step(G, D, opt_g, opt_d, real, z)
        moved = [not torch.equal(a, p) for a, p in zip(before, (*G.parameters(), *D.parameters()))]
        ctx.expect(
            bool(torch.isfinite(d) and torch.isfinite(g)) and all(moved),
            "a D+G step left NaN or did not move every parameter",
            name="a training step runs",
        )
        ctx.expect(tuple(G(z).shape) == (cfg.batch, 1, 32, 32), f"G output {tuple(G(z).shape)}", name="32x32 samples")

    def bench(self, ctx):
        cfg = ctx.configs[0]
        x, data = _bench_images(cfg.real_images)
        torch.manual_seed(ctx.rng_seed)
        G, D, opt_g, opt_d = self._build(cfg, ctx.device, channels=x.shape[1])
        x, g = x.to(ctx.device), ctx.generator(1)
        d_hist, g_hist = [], []
        for _ in range(cfg.steps):
            real = x[torch.randint(0, x.shape[0], (cfg.batch,), generator=g).to(ctx.device)]
            d, gl = self._step(G, D, opt_g, opt_d, real, torch.randn(cfg.batch, cfg.z_dim, device=ctx.device))
            d_hist.append(float(d))
            g_hist.append(float(gl))
        steps = list(range(1, cfg.steps + 1))
        ctx.curve("GAN losses", steps, d_hist, series="D loss", y_label="BCE loss")
        ctx.curve("GAN losses", steps, g_hist, series="G loss", y_label="BCE loss")
        with torch.no_grad():
            samples = G.eval()(torch.randn(512, cfg.z_dim, generator=ctx.generator(2)).to(ctx.device))
        ctx.image(
            "samples",
            samples[:64],
            nrow=8,
            vmin=-1,
            vmax=1,
            caption=f"64 32x32 samples after {cfg.steps} steps ({data})",
        )
        if x.shape[1] == 1:  # the digits-feature FD scores grey digits only
            fd, noise = digits_fd(samples), digits_fd(torch.rand(512, 1, 32, 32, generator=ctx.generator(3)) * 2 - 1)
            ctx.metric("digits_fd", fd)
            ctx.metric("noise_fd", noise)
            ctx.metric("fd_vs_noise", fd / noise)
        else:
            ctx.note(f"trained on {data}: no digits-feature FD (it scores grey digits); judge the sample grid")
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        torch.manual_seed(ctx.rng_seed)
        G, D, opt_g, opt_d = self._build(config, ctx.device)
        real = _upsampled_digits()[: config.batch].to(ctx.device)
        z = torch.randn(config.batch, config.z_dim, device=ctx.device)
        if impl == "sample":
            return Prepared(fn=torch.no_grad()(lambda: G(z)), items=config.batch, item_unit="samples")
        return Prepared(fn=lambda: self._step(G, D, opt_g, opt_d, real, z), items=1, item_unit="steps")
