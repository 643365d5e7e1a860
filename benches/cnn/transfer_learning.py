"""4.10 Transfer learning from a pretrained model.

Compared, at an equal number of steps on the same few target images: a CNN trained from
``scratch``; the same CNN starting from pretrained weights with the backbone frozen and
only a new head trained (``finetune_head``); with every weight fine-tuned
(``finetune_full``); and a control the usual comparison leaves out, a frozen RANDOM
backbone with a trained head (``random_frozen``), which separates "the features were
pretrained" from "only a small head was optimised".

The "pretrained" weights come from the task's own pretraining run: the SmallCNN (two
conv-BN-ReLU-maxpool stages, flatten + Linear head) trained on digits 0-4 and saved with
``torch.save`` in the work folder; each fine-tuning run loads it. The target task is digits
5-9, 5 training images per class drawn anew for each of 8 seeded repeats, 30 % held out;
every variant gets 6 full-batch Adam steps at the same learning rate.

Checked:

* freezing leaves the frozen weights unchanged, bitwise, buffers included, the head
  changes, and only the head is trainable (``requires_grad=False`` alone does not freeze
  BN: in train mode it still updates its running statistics, so the frozen backbone is
  kept in eval mode);
* the fine-tuned head beats training from scratch at equal steps: mean test accuracy over
  8 paired repeats (same images and head init for every variant) higher by >= 0.02 (one
  repeat alone varies by +-0.1, hence the averaging and the slack);
* torchvision-format weights (``models.torchvision_format``: ``conv1.weight``,
  ``layer2.0.downsample.0.weight``, ``fc.weight``, ...) load into
  ``models.convnets.ResNet`` tensor for tensor; a head of another size is skipped and
  reported; a wrong shape or a missing key raises naming the key.

Bench: a training step of each variant; accuracies and curves after the equal budget.

Lesson, and a caution: the frozen pretrained backbone + head wins clearly over scratch at
6 steps, but the random-backbone control does about as well on these 8x8 digits: what wins
at few steps is optimising a small linear head on fixed conv-ReLU-maxpool features, a
near-convex problem, and random conv features of 8x8 digits are already good (random
features as a baseline: Jarrett et al., "What is the Best Multi-Stage Architecture for
Object Recognition?", ICCV 2009; Saxe et al., "On Random Weights and Unsupervised Feature
Learning", ICML 2011). A transfer claim needs the random-feature control; the claims
state both margins. A frozen step costs a forward through the backbone and a backward
through the head only.
"""

from __future__ import annotations

import dataclasses
import statistics
import types

import torch

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.data.digit_tasks import digit_tasks, few_shot
from harness.mutants import Mutant
from harness.train import fit, standard_step
from models.convnets import SmallCNN, SmallCNNConfig
from models.torchvision_format import check_torchvision_loading

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


# -- wrong versions (mutants) ------------------------------------------------------------


def _leaves_requires_grad(self, model):
    model.features.eval()  # eval mode, but every weight still trainable


def _leaves_bn_training(self, model):
    for p in model.features.parameters():
        p.requires_grad_(False)  # no gradients, but BN still updates its running stats


def _head_gets_one_step(self, ctx, config, variant, path, train, test, seed):  # an unequal budget
    if variant == "finetune_head":
        config = dataclasses.replace(config, steps=1)
    return TransferLearning.finetune(self, ctx, config, variant, path, train, test, seed)


@task("cnn.transfer_learning", seed="4.10", title="transfer learning from a pretrained model")
class TransferLearning(Comparison):
    __doc__ = __doc__
    variants = ("scratch", "finetune_head", "finetune_full", "random_frozen")
    sizes = {"tiny": TransferConfig(), "cpu": TransferConfig(), "gpu": TransferConfig(repeats=32)}
    metrics = {
        "margin_head_over_scratch": "mean test accuracy, frozen pretrained backbone + head minus scratch",
        "margin_head_over_random_frozen": "mean test accuracy, pretrained frozen backbone minus a random one",
    }
    claims = (
        metric("margin_head_over_scratch", ">=", 0.05, text="5-shot: pretrained + head >= 5 points over scratch"),
        metric("margin_head_over_random_frozen", "<=", 0.05, text="a frozen RANDOM backbone comes within 5 points"),
        speedup("finetune_head", over="finetune_full", at_least=1.2, text="a frozen-backbone step >= 1.2x a full one"),
    )
    mutants = tuple(
        Mutant(name, what, {attr: fn}, match=match)
        for name, what, attr, fn, match in (
            ("leaves_requires_grad", "weights left trainable", "freeze", _leaves_requires_grad, "backbone changed"),
            ("leaves_bn_training", "BN left in train mode", "freeze", _leaves_bn_training, "running_"),
            ("ignores_checkpoint", "never loads", "load_pretrained", lambda self, m, path: None, "backbone changed"),
            ("head_gets_fewer_steps", "head trains 1 step", "finetune", _head_gets_one_step, "beats scratch"),
        )
    )

    def new_model(self, ctx, config, seed):
        torch.manual_seed(seed)
        net = SmallCNN(SmallCNNConfig(channels=config.channels, batch_norm=True, num_classes=5))
        return net.to(ctx.device, ctx.dtype)

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
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        kw = {"batch_size": 64, "epochs": config.pretrain_epochs, "seed": ctx.rng_seed}
        log = fit(model, opt, source[0], eval_data=source[1], **kw)
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
        kw = {"batch_size": train[1].shape[0], "epochs": 10**6, "max_steps": config.steps, "seed": seed}
        log = fit(model, opt, train, eval_data=test, eval_every=1, **kw)
        return model, log

    def compare(self, ctx, config):
        """Pretrain, then every variant on each repeat; returns per-variant accuracies."""
        source, target = digit_tasks(ctx.device, ctx.dtype)
        ctx.note(f"data: scikit-learn digits (real 8x8); source 0-4, target 5-9, {config.shots} images per class")
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
        rows = [{"variant": v, **{f"repeat_{i}": round(x, 4) for i, x in enumerate(a)}, "mean": round(mean[v], 4)}
                for v, a in accs.items()]  # fmt: skip
        ctx.table(f"test accuracy on digits 5-9 after {config.steps} steps ({config.shots}-shot)", rows)
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
        check_torchvision_loading(ctx, ctx.rng_seed)

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
