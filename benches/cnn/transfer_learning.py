"""4.10 Transfer learning from a pretrained model.

Compared, at an equal number of steps on the same few target images: a CNN trained from
``scratch``; the same CNN starting from pretrained weights with the backbone frozen and
only a new head trained (``finetune_head``); with every weight fine-tuned
(``finetune_full``); and a control the usual comparison leaves out, a frozen RANDOM
backbone with a trained head (``random_frozen``), which separates "the features were
pretrained" from "only a small head was optimised".

The "pretrained" weights come from a pretraining run the task does itself: the CNN
(``models/convnets.py`` SmallCNN, two conv-BN-ReLU-maxpool stages of 32 and 64 channels,
flatten + Linear head) is trained on the source task, scikit-learn digits 0-4, and saved
with ``torch.save`` as a checkpoint in the task's work folder; each fine-tuning run loads
it from there. The target task is digits 5-9 with 5 training images per class (25 in
all, drawn anew for each of 8 seeded repeats), evaluated on 30% of the 5-9 digits held
out; every variant gets 6 full-batch Adam steps at the same learning rate.

Checked:
* freezing leaves the frozen weights unchanged, bitwise, buffers included: every
  backbone parameter and BN running statistic after fine-tuning equals the checkpoint's,
  the head has changed, and only the head's parameters are trainable (requires_grad=False
  alone does not freeze BN: in train mode it still updates its running mean/var, so the
  frozen backbone is kept in eval mode);
* the fine-tuned head beats training from scratch at equal steps: mean test accuracy over
  8 paired repeats (same images and head init for every variant) higher by >= 0.02. Over
  harness seeds 0-9 the margin measured 0.076-0.209 (mean 0.119); one repeat alone
  varies by +-0.1, hence the averaging and the slack;
* loading torchvision-format weights: a state_dict with torchvision's ResNet key names
  (``conv1.weight``, ``bn1.running_mean``, ``layer1.0.conv1.weight``,
  ``layer2.0.downsample.0.weight``, ``fc.weight``, ...) written to a local file by the
  check is loaded into ``models.convnets.ResNet`` tensor for tensor; a head of another
  size is skipped and reported; a wrong shape or a missing key raises naming the key.

Bench: time per training step frozen vs full (a frozen backbone needs no backward), and
the four variants' accuracies and curves after the equal budget.

Lesson, and a caution: the frozen pretrained backbone + head wins clearly over scratch at
6 steps (~+0.12), but the random-backbone control does about as well or better on these
8x8 digits (exploratory runs, 12 repeats, flatten head: pretrained 0.74 vs random 0.81
at 6 steps, 0.88 vs 0.86 at 12). What wins at few steps is optimising a small linear
head on fixed conv-ReLU-maxpool features, a near-convex problem, and random conv
features of 8x8 digits are already good. The pretrained weights pay off as an
initialisation: with a global-average-pool head instead, full fine-tuning from them beat
scratch by 0.10-0.21 across 1-20 shots and 6-25 steps, while frozen pretrained features
trailed scratch. A transfer claim needs the random-feature control. A frozen step costs
a forward through the backbone and a backward through the head only.

Timing note: this machine was shared with other jobs (load average 6-8 on 2 cores). With
2 threads every figure was distorted by OpenMP threads waiting for a descheduled peer
(F.conv2d itself ran 2x slower than with one thread), so the figures below come from
``OMP_NUM_THREADS=1 drills bench --task cnn.transfer_learning --no-save`` (one thread, torch 2.13 CPU,
float32, AMD EPYC); single runs, +-20% between runs.

Mean test accuracy over 8 repeats (seed 0): scratch 0.626, finetune_head 0.835,
finetune_full 0.762, random_frozen 0.832 (margins over scratch +0.209, +0.136, +0.206).
Training throughput over the runs: frozen backbone 7,930 images/s vs full 5,548 vs
scratch 5,323 (a frozen step ~1.45x cheaper; single-step timings of 1.5-3.8 ms were
noisy). Pretraining: 5 epochs, 100% on held-out digits 0-4. Bench 9 s.
"""

from __future__ import annotations

import dataclasses
import statistics
import types

import torch

from harness import Comparison, Prepared, task
from harness.data import load_digits_images, stratified_split
from harness.train import fit, standard_step
from models.convnets import ResNet, ResNetConfig, SmallCNN, SmallCNNConfig, load_torchvision_weights

CHECKPOINT = "pretrained_digits_0-4.pt"


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Network, pretraining and fine-tuning budget."""

    channels: tuple[int, ...] = (32, 64)
    """conv stage widths of the SmallCNN"""
    pretrain_epochs: int = 5
    """passes over the source digits (0-4)"""
    shots: int = 5
    """target training images per class (digits 5-9)"""
    steps: int = 6
    """fine-tuning steps, equal for every variant (full-batch: all shots*5 images per step)"""
    lr: float = 1e-2
    """Adam learning rate of every fine-tuning variant (pretraining uses 3e-3)"""
    repeats: int = 8
    """seeded repeats (new target images and head init) averaged per variant"""
    min_margin: float = 0.02
    """accuracy by which finetune_head must beat scratch (mean over repeats)"""

    def label(self) -> str:
        return f"channels={self.channels},{self.shots}-shot,{self.steps} steps,x{self.repeats}"


def digit_tasks(device, dtype):
    """Source (digits 0-4) and target (5-9, relabelled 0-4) as ((x_tr, y_tr), (x_te, y_te))."""
    ds = load_digits_images()
    x = (ds.images.to(dtype) / 16).unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)
    out = []
    for lo in (0, 5):
        m = (ds.labels >= lo) & (ds.labels < lo + 5)
        xs, ys = x[m], ds.labels[m] - lo
        tr, te = stratified_split(ys, 0.3, seed=0)
        out.append(((xs[tr].to(device), ys[tr].to(device)), (xs[te].to(device), ys[te].to(device))))
    return out


def few_shot(train, shots: int, seed: int):
    """``shots`` seeded images per class of ``train``."""
    g = torch.Generator().manual_seed(seed)
    y = train[1].cpu()
    idx = torch.cat(
        [torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()), generator=g)[:shots]] for c in range(5)]
    )
    return train[0][idx.to(train[0].device)], train[1][idx.to(train[1].device)]


def torchvision_resnet_state(layers, widths, num_classes, in_channels=3, seed=0):
    """A random state_dict named as torchvision.models.resnet names a basic-block ResNet
    (written from torchvision's naming rules, not from ``models.convnets``)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name, cout, cin, k):
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=g)

    def bn(name, c):
        sd.update(
            {
                f"{name}.weight": torch.rand(c, generator=g) + 0.5,
                f"{name}.bias": torch.randn(c, generator=g),
                f"{name}.running_mean": torch.randn(c, generator=g),
                f"{name}.running_var": torch.rand(c, generator=g) + 0.5,
                f"{name}.num_batches_tracked": torch.tensor(int(torch.randint(1, 10**6, (1,), generator=g))),
            }
        )

    conv("conv1", widths[0], in_channels, 3)  # the CIFAR stem: 3x3 (torchvision's is 7x7)
    bn("bn1", widths[0])
    cin = widths[0]
    for i, (n, w) in enumerate(zip(layers, widths)):
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            conv(f"{p}.conv1", w, cin, 3), bn(f"{p}.bn1", w), conv(f"{p}.conv2", w, w, 3), bn(f"{p}.bn2", w)
            if j == 0 and (i > 0 or cin != w):
                conv(f"{p}.downsample.0", w, cin, 1), bn(f"{p}.downsample.1", w)
            cin = w
    sd["fc.weight"], sd["fc.bias"] = torch.randn(num_classes, cin, generator=g), torch.randn(num_classes, generator=g)
    return sd


@task("cnn.transfer_learning", seed="4.10", title="transfer learning from a pretrained model")
class TransferLearning(Comparison):
    __doc__ = __doc__
    variants = ("scratch", "finetune_head", "finetune_full", "random_frozen")
    sizes = {"tiny": TransferConfig(), "cpu": TransferConfig(), "gpu": TransferConfig(repeats=32)}

    def new_model(self, ctx, config, seed):
        torch.manual_seed(seed)
        return SmallCNN(SmallCNNConfig(channels=config.channels, batch_norm=True, num_classes=5)).to(
            ctx.device, ctx.dtype
        )

    def freeze(self, model):
        """Freeze the backbone: no gradients, and BN running statistics kept (eval mode)."""
        for p in model.features.parameters():
            p.requires_grad_(False)
        model.features.eval()
        # fit() and evaluate() call model.train(); a frozen backbone must stay in eval mode,
        # else its BN layers keep updating their running statistics
        model.features.train = types.MethodType(lambda self, mode=True: self, model.features)

    def load_pretrained(self, model, path):
        """Backbone weights (and BN buffers) from the checkpoint; the head stays new."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        backbone = {k: v for k, v in state.items() if not k.startswith("head.")}
        missing, unexpected = model.load_state_dict(backbone, strict=False)
        if unexpected or any(not k.startswith("head.") for k in missing):
            raise KeyError(f"checkpoint {path} does not fit the model: missing {missing}, unexpected {unexpected}")

    def pretrain(self, ctx, config, source):
        model = self.new_model(ctx, config, ctx.rng_seed)
        log = fit(
            model,
            torch.optim.Adam(model.parameters(), lr=3e-3),
            source[0],
            batch_size=64,
            epochs=config.pretrain_epochs,
            eval_data=source[1],
            seed=ctx.rng_seed,
        )
        log.record(ctx, series="pretrain (digits 0-4)", prefix="pretrain.")
        path = ctx.workdir / CHECKPOINT
        torch.save(model.state_dict(), path)
        return path, log.final_accuracy

    def finetune(self, ctx, config, variant, path, train, test, seed):
        """Train ``variant`` for config.steps full-batch steps; return (model, log)."""
        model = self.new_model(ctx, config, seed)  # same seed -> same head init in every variant
        if variant in ("finetune_head", "finetune_full"):
            self.load_pretrained(model, path)
        if variant in ("finetune_head", "random_frozen"):
            self.freeze(model)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
        log = fit(
            model,
            opt,
            train,
            batch_size=train[1].shape[0],
            epochs=10**6,
            max_steps=config.steps,
            eval_data=test,
            eval_every=1,
            seed=seed,
        )
        return model, log

    def compare(self, ctx, config):
        """Pretrain, then every variant on each repeat; returns per-variant accuracies."""
        source, target = digit_tasks(ctx.device, ctx.dtype)
        ctx.note(
            "data: scikit-learn digits (real 8x8); source task digits 0-4, target digits 5-9, "
            f"{config.shots} training images per target class"
        )
        path, src_acc = self.pretrain(ctx, config, source)
        ctx.expect(src_acc >= 0.9, f"pretraining reached only {src_acc:.3f} on digits 0-4", name="pretraining learns")
        accs: dict[str, list[float]] = {v: [] for v in self.variants}
        saved = torch.load(path, map_location=ctx.device, weights_only=True)
        for rep in range(config.repeats):
            seed = ctx.rng_seed + 1000 * (rep + 1)
            train = few_shot(target[0], config.shots, seed)
            for variant in self.variants:
                model, log = self.finetune(ctx, config, variant, path, train, target[1], seed)
                accs[variant].append(log.final_accuracy)
                if rep == 0:
                    log.record(ctx, series=variant, prefix=f"{variant}.")
                if variant == "finetune_head":
                    self.check_frozen(ctx, model, saved, seed)
        for v, a in accs.items():
            ctx.metric(f"{v}.mean_accuracy", statistics.mean(a))
        mean = {v: statistics.mean(a) for v, a in accs.items()}
        margin = mean["finetune_head"] - mean["scratch"]
        ctx.metric("margin_head_over_scratch", margin)
        ctx.metric("margin_full_over_scratch", mean["finetune_full"] - mean["scratch"])
        ctx.metric("margin_head_over_random_frozen", mean["finetune_head"] - mean["random_frozen"])
        ctx.table(
            f"test accuracy on digits 5-9 after {config.steps} steps ({config.shots}-shot)",
            [
                {
                    "variant": v,
                    **{f"repeat_{i}": round(x, 4) for i, x in enumerate(a)},
                    "mean": round(statistics.mean(a), 4),
                }
                for v, a in accs.items()
            ],
        )
        return accs, margin

    def check_frozen(self, ctx, model, saved, seed):
        state = model.state_dict()
        changed = [k for k, v in saved.items() if not k.startswith("head.") and not torch.equal(state[k], v)]
        ctx.expect(
            not changed,
            f"frozen backbone changed during fine-tuning: {changed[:6]}",
            name="frozen weights unchanged (bitwise, buffers included)",
        )
        init_head = self.new_model(ctx, ctx.configs[0], seed).head.state_dict()
        ctx.expect(
            any(not torch.equal(v, model.head.state_dict()[k]) for k, v in init_head.items()),
            "the head did not change during fine-tuning",
            name="head trained",
        )
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        ctx.expect(
            all(n.startswith("head.") for n in trainable) and trainable,
            f"trainable parameters outside the head: {sorted(trainable)[:6]}",
            name="only the head trainable",
        )

    def check(self, ctx):
        config = ctx.configs[0]
        _, margin = self.compare(ctx, config)
        ctx.expect(
            margin >= config.min_margin,
            f"fine-tuned head beats scratch by only {margin:+.3f} mean accuracy "
            f"(needs {config.min_margin}) at {config.steps} equal steps",
            name="fine-tuned head beats scratch",
        )
        self.check_torchvision_format(ctx)

    def check_torchvision_format(self, ctx):
        layers, widths = (1, 2), (4, 8)
        sd = torchvision_resnet_state(layers, widths, num_classes=1000, seed=ctx.rng_seed)
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

    def prepare(self, ctx, impl, config):
        model = self.new_model(ctx, config, ctx.rng_seed)
        if impl in ("finetune_head", "random_frozen"):
            self.freeze(model)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
        g = ctx.generator(3)
        n = config.shots * 5
        x = torch.rand(n, 1, 8, 8, generator=g).to(ctx.device, ctx.dtype)
        y = torch.randint(0, 5, (n,), generator=g).to(ctx.device)
        return Prepared(fn=lambda: standard_step(model, opt, x, y), items=n, item_unit="images")

    def bench(self, ctx):
        config = ctx.configs[0]
        for variant in self.variants:
            ctx.measure(variant, self.prepare(ctx, variant, config), config=config)
        self.compare(ctx, config)
