"""10.04 Reproduce ResNet results (He et al. 2015, CIFAR-10).

Compared: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (arXiv:1512.03385):
ResNet-18 and -50 (``models.convnets.ResNet``, torchvision's layout), the CIFAR ResNet-20 of
Sec. 4.2 with option-A shortcuts (``models.resnet_cifar.OptionABlock``: subsample + zero
channels, no parameters) and its CIFAR-10 recipe as a frozen config (``HeCifarRecipe``: SGD lr
0.1, momentum 0.9, weight decay 1e-4, lr / 10 at 32k and 48k of 64k iterations, batch 128, flip +
4-pixel pad-crop). The bench compresses the recipe to the preset (milestones at 1/2 and 3/4) on
CIFAR-10 under ``--data-dir`` / ``$DRILLS_DATA_DIR``, else on the far easier SYNTHETIC stand-in
(only the pipeline and the images/s carry over); ``gpu`` is the full recipe on real CIFAR-10.

Lesson: a reproduction starts with what can be checked exactly. Parameter counts, free on the
meta device, pin the architecture (ResNet-18 11,689,512 and ResNet-50 25,557,032, torchvision's;
ResNet-20 269,722 with option A, 272,474 with option B), and the schedule is a function of the
iteration, so stepping it per epoch, or one milestone late, shows up before any GPU hour is
spent. Anchors: ResNet-20 8.75 % test error (91.25 % accuracy) and ResNet-110 6.43 % (best of 5
runs; mean 6.61 +- 0.16) in He et al. Table 6; for speed a user would pick Keller Jordan's
airbench94: 94.01 % in 3.29 s on one A100 (github.com/KellerJordan/cifar10-airbench).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.cifar_images import load_images, to_tensors
from harness.mutants import Mutant
from harness.published import published_vs_ours
from harness.train import standard_step
from kernels.vision import wrong
from kernels.vision.augment import augment_batch, locate_flip_crop
from kernels.vision.train_cifar import fit_augmented
from models import resnet_cifar as rc
from models.convnets import ResNet, count_params

#: published parameter counts: torchvision's resnet18 / resnet50 (1000 classes), He et al.'s ResNet-20
PUBLISHED = {"ResNet-18": 11_689_512, "ResNet-50": 25_557_032, "ResNet-20 (option A)": rc.RESNET20_PARAMS}
#: He et al. 2015 Sec. 4.2, as printed (the check compares the config with these)
PAPER = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "milestones": (32_000, 48_000), "gamma": 0.1,
         "total_steps": 64_000, "batch_size": 128, "padding": 4, "flip_p": 0.5}  # fmt: skip
ANCHORS = [
    ("He et al. 2015 Table 6: ResNet-20", "91.25 % (8.75 % error)", "CIFAR-10 45k/5k split, 64k its x 128, 2 GPUs"),
    ("He et al. 2015 Table 6: ResNet-110", "93.57 % (6.43 % error, best of 5)", "same recipe, 1.7M parameters"),
    ("airbench94 (Keller Jordan)", "94.01 % in 3.29 s", "one A100, its own tuned net and recipe"),
]


@dataclasses.dataclass(frozen=True)
class ResNetRun:
    """Model, data and the budget the recipe is compressed to."""

    n: int = 1
    """blocks per stage (ResNet-(6n+2); 3 is ResNet-20)"""
    widths: tuple[int, ...] = (8, 16, 32)
    """stage widths (the paper: 16, 32, 64)"""
    steps: int = 60
    """optimizer steps (the paper: 64,000); milestones sit at 1/2 and 3/4"""
    batch_size: int = 64
    """images per step (the paper: 128)"""
    n_train: int | None = 1024
    """training images (None: all 50,000)"""
    n_test: int | None = 512
    """test images (None: all 10,000)"""


@task("research.resnet_repro", seed="10.04", title="reproduce ResNet results")
class ResNetRepro(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": ResNetRun(),
        "cpu": ResNetRun(n=3, widths=(16, 32, 64), steps=30, batch_size=128, n_train=3840, n_test=500),
        "gpu": ResNetRun(n=3, widths=(16, 32, 64), steps=64_000, batch_size=128, n_train=None, n_test=None),
    }
    time_limit_s = {"check": 120.0, "bench": 7200.0}
    metrics = {
        "param_count_mismatch": "|ours - published| summed over ResNet-18, ResNet-50 and ResNet-20, parameters",
        "test_accuracy": "accuracy on the test images after the compressed recipe, fraction",
        "images_per_s": "training images per second over the run (evaluation excluded)",
    }
    claims = (
        metric("param_count_mismatch", "<=", 0, text="ResNet-18, -50 and option-A ResNet-20 match the published "
               "parameter counts exactly"),
        metric("test_accuracy", ">=", 0.90, device="cuda", text="the full recipe (gpu preset, real CIFAR-10) reaches "
               ">= 90 % (paper: 91.25 %)"),
        metric("test_accuracy", ">=", 0.5, device="cpu", text="30 steps of ResNet-20 reach >= 50 % on the stand-in"),
    )  # fmt: skip
    #: the pieces the check inspects (mutants replace them)
    cifar_block = rc.OptionABlock
    recipe = rc.HeCifarRecipe()
    make_opt = staticmethod(rc.make_optimizer)
    augment = staticmethod(augment_batch)
    mutants = (
        Mutant("option_b_counted_as_a", "1x1-conv projection shortcuts where the paper uses option A",
               {"cifar_block": wrong.ProjectionBlock}, match="ResNet-20"),
        Mutant("milestone_off_by_one", "the scheduler divides the lr one iteration late (32,001 and 48,001)",
               {"make_opt": staticmethod(wrong.one_late_milestones)}, match="schedule"),
        Mutant("no_weight_decay", "the optimizer drops the 1e-4 weight decay",
               {"make_opt": staticmethod(wrong.no_weight_decay)}, match="optimizer"),
        Mutant("no_pad_crop", "flips only: the 4-pixel pad-crop is missing", {"augment": staticmethod(wrong.flip_only)},
               match="crop"),
    )  # fmt: skip

    def _counts(self):
        with torch.device("meta"):  # shapes only: counting ResNet-50 allocates nothing
            nets = (ResNet("resnet18"), ResNet("resnet50"), ResNet(rc.cifar_resnet_config(3), self.cifar_block))
            return {k: (count_params(net), PUBLISHED[k]) for k, net in zip(PUBLISHED, nets, strict=True)}

    def check(self, ctx):
        for name, (ours, published) in self._counts().items():
            ctx.expect(ours == published, f"{name} has {ours:,} parameters, published {published:,}",
                       name=f"{name} parameter count")  # fmt: skip
        blk = self.cifar_block(4, 8, 2)
        x = torch.randn(2, 4, 6, 6, generator=ctx.generator())
        if hasattr(blk, "shortcut"):
            ctx.assert_close(blk.shortcut(x), F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2)),
                             name="option-A shortcut = subsample + zero channels")  # fmt: skip
        got = {k: getattr(self.recipe, k) for k in PAPER}
        ctx.expect(got == PAPER, f"recipe {got} differs from He et al. {PAPER}", name="recipe = the paper's numbers")
        opt, sched = self.make_opt([torch.nn.Parameter(torch.zeros(1))], self.recipe)
        g, wanted = opt.param_groups[0], (PAPER["lr"], PAPER["momentum"], PAPER["weight_decay"])
        ctx.expect((g["lr"], g["momentum"], g["weight_decay"]) == wanted,
                   f"optimizer has lr, momentum, wd = {g['lr']}, {g['momentum']}, {g['weight_decay']}, "
                   f"not {wanted}", name="optimizer hyperparameters")  # fmt: skip
        lrs = rc.scheduled_lrs(opt, sched, PAPER["total_steps"])  # the LR each of the 64k iterations uses
        want = torch.tensor([0.1] * 32_000 + [0.01] * 16_000 + [0.001] * 16_000, dtype=torch.float64)
        bad = ((lrs - want).abs() > 1e-12).nonzero().flatten().tolist()
        i = bad[0] if bad else 0
        ctx.expect(not bad, f"LR schedule wrong at {len(bad)} iterations, first at {i}: {float(lrs[i])} vs "
                   f"{float(want[i])}", name="LR schedule, every iteration")  # fmt: skip
        x = torch.rand(16, 3, 32, 32, generator=ctx.generator())
        found = locate_flip_crop(self.augment(x, torch.zeros(16), ctx.generator(1), padding=4, flip_p=0.5)[0], x, 4)
        ctx.expect(None not in found, "an augmented image is no flip + crop of its zero-padded original",
                   name="augmentation = flip + 4-pixel pad-crop")  # fmt: skip
        moved, flips = {h[1:] for h in found if h}, [h[0] for h in found if h]
        ctx.expect(len(moved) > 3 and set(flips) == {0, 1}, f"16 images used only crop offsets {moved} and flips "
                   f"{flips}: the pad-crop or the flip never varies", name="augmentation varies")  # fmt: skip
        log = self._train(ctx, ctx.configs[0])
        k = max(1, len(log.losses) // 5)
        first, last = sum(log.losses[:k]) / k, sum(log.losses[-k:]) / k
        ctx.expect(last < 0.8 * first, f"training loss went {first:.3f} -> {last:.3f} (needs a 20 % drop)",
                   name="loss falls")  # fmt: skip

    def _model(self, ctx, run):
        torch.manual_seed(ctx.rng_seed)
        return ResNet(rc.cifar_resnet_config(run.n, widths=run.widths), self.cifar_block).to(ctx.device, ctx.dtype)

    def _train(self, ctx, run):
        tr, te, self.data_desc = load_images(run.n_train, run.n_test)
        train, test = to_tensors(tr, te, ctx.device, ctx.dtype)
        model, recipe = self._model(ctx, run), self.recipe.scaled(run.steps, run.batch_size)
        opt, sched = self.make_opt(model.parameters(), recipe)
        return fit_augmented(model, opt, sched, train, test, self.augment, steps=run.steps, batch_size=run.batch_size,
                             padding=recipe.padding, flip_p=recipe.flip_p, seed=ctx.rng_seed)  # fmt: skip

    def prepare(self, ctx, impl, config):
        model = self._model(ctx, config)
        opt, _ = self.make_opt(model.parameters(), self.recipe)
        x = torch.randn(config.batch_size, 3, 32, 32, generator=ctx.generator(), dtype=ctx.dtype).to(ctx.device)
        y = torch.randint(0, 10, (config.batch_size,), generator=ctx.generator(1)).to(ctx.device)
        return Prepared(fn=lambda: standard_step(model, opt, x, y), items=config.batch_size, item_unit="images")

    def bench(self, ctx):
        run, counts = ctx.configs[0], self._counts()
        ctx.metric("param_count_mismatch", sum(abs(a - b) for a, b in counts.values()))
        ctx.table("parameter counts", [{"model": k, "ours": a, "published": b} for k, (a, b) in counts.items()])
        log = self._train(ctx, run)
        log.record(ctx)
        ctx.metric("test_accuracy", log.final_accuracy)
        ctx.metric("images_per_s", log.samples_per_s)
        budget = f"ResNet-{6 * run.n + 2} widths {run.widths}, {run.steps} its x {run.batch_size}"
        published_vs_ours(ctx, ANCHORS, f"{100 * log.final_accuracy:.2f} %", f"{self.data_desc}; {budget}")
        super().bench(ctx)
