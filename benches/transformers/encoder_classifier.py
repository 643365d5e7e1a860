"""6.02 Mini Transformer encoder for text classification.

Trains ``models.transformer.EncoderClassifier`` (token embedding + learned positions, pre-LN
encoder blocks, mean over the real tokens, linear head) on movie-review sentiment
(``harness.data.reviews``: the IMDB folders under ``$DRILLS_DATA_DIR``, else a SYNTHETIC
stand-in), tokenized with a vocabulary built on the training texts only (``WordTokenizer``),
truncated to ``max_len`` tokens and right-padded. The check wants held-out accuracy >= 70 %
(chance 50 %) and the logits of 6 held-out reviews unchanged by padding.

Lesson: with the key padding mask and a masked mean, padding is invisible to the model: logits
of a review alone, padded by 3 or 25 tokens, or batched beside a longer one agree to float32
rounding (sums over extra zeros), before and after training. The negations and 20 %
opposite-polarity sentences of the synthetic generator cap what is reachable well below 100 %.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import TrainingRun, task
from harness.claims import metric
from harness.data import WordTokenizer
from harness.data.reviews import load_reviews
from harness.mutants import Mutant, tiny_changed
from harness.trained import Budget, Recipe, default_budget, expect_accuracy, forward_prepared
from kernels.layers.attention_maps import last_layer_map
from kernels.text.classifier_wrong import AttendsToPadding, PoolsOverPadding
from models.transformer import EncoderClassifier, preset


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Data size, model and training budget."""

    model: str = "tiny"
    """models.transformer preset"""
    n_train: int = 2000
    """training reviews (synthetic count, or a cap on the real 25,000)"""
    n_test: int = 500
    """held-out reviews"""
    max_len: int = 64
    """tokens kept per review (the rest is truncated)"""
    epochs: int = 3
    """passes over the training reviews"""
    batch_size: int = 32
    """reviews per optimizer step"""
    lr: float = 2e-3
    """AdamW learning rate"""
    target_accuracy: float = 0.7
    """held-out accuracy the check requires (chance: 0.5; the tiny run reaches ~0.79)"""

    def label(self) -> str:
        return f"{self.model},n={self.n_train},max_len={self.max_len},epochs={self.epochs},bs={self.batch_size}"


@task("transformers.encoder_classifier", seed="6.02", title="mini Transformer encoder for text classification")
class EncoderClassifierTask(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": ClassifierConfig(),
        "cpu": ClassifierConfig(n_train=4000, n_test=1000, max_len=128, epochs=3),
        "gpu": ClassifierConfig(
            model="base", n_train=25_000, n_test=25_000, max_len=256, epochs=4, lr=3e-4, target_accuracy=0.85
        ),
    }
    metrics = {"final_accuracy": "held-out accuracy at the end of training, share in [0, 1]"}
    claims = (
        metric("final_accuracy", ">=", 0.75, text="the tiny encoder classifies >= 75 % of held-out reviews right"),
    )
    #: the model class under test
    model_cls = EncoderClassifier
    mutants = (
        Mutant(
            "pools_over_padding", "the mean pools over padding too", {"model_cls": PoolsOverPadding}, match="pad tokens"
        ),
        Mutant(
            "attends_to_padding",
            "no key padding mask in attention",
            {"model_cls": AttendsToPadding},
            match="pad tokens",
        ),
        Mutant("does_not_learn", "learning rate 0", tiny_changed(sizes, lr=0.0, epochs=1), match="test accuracy"),
    )

    def train_data(self, ctx, config):
        tr, te, desc = load_reviews(config.n_train, config.n_test)
        self.tok, self.test_texts = WordTokenizer.fit(tr.texts), te.texts  # the recipe sizes its vocabulary by it
        x, xt = (self.tok.encode_batch(s.texts, config.max_len)[0] for s in (tr, te))  # (N, max_len) ids, padded
        ctx.note(
            f"data: {desc}; {len(tr)} train / {len(te)} test, vocabulary {self.tok.vocab_size}, "
            f"up to {config.max_len} tokens"
        )
        return (x, tr.labels), (xt, te.labels)

    def budget(self, config) -> Budget:  # two evaluations per epoch
        return dataclasses.replace(default_budget(config), eval_every=max(1, config.n_train // config.batch_size // 2))

    def recipe(self, ctx, config) -> Recipe:
        model = self.model_cls(preset(config.model, max_len=config.max_len + 32), self.tok.vocab_size, 2)
        return Recipe(model, lambda params: torch.optim.AdamW(params, lr=config.lr))

    def check(self, ctx):
        config = ctx.configs[0]
        self.train_data(ctx, config)
        torch.manual_seed(ctx.rng_seed)
        model = self.recipe(ctx, config).model.to(ctx.device, ctx.dtype)
        self._check_padding(ctx, model, config.max_len, "initialised")
        super().check(ctx)  # the harness trains the recipe: properties() below

    def properties(self, ctx, run):
        self._check_padding(ctx, run.model, run.config.max_len, "trained")
        expect_accuracy(ctx, run, run.config.target_accuracy, name="trains above chance", why=" (chance 0.5)")

    @torch.no_grad()
    def _check_padding(self, ctx, model, max_len, when):
        model.eval()
        tok, texts = self.tok, self.test_texts[:6]
        longest = max(len(tok.encode(t)[:max_len]) for t in texts)
        for i, text in enumerate(texts):
            ids = tok.encode(text)[:max_len][None].to(ctx.device)  # (1, T) no padding
            other = tok.encode(texts[(i + 1) % len(texts)] + " " + texts[(i + 2) % len(texts)])[: longest + 20]
            batch = torch.full((2, max(ids.shape[1], len(other))), tok.pad_id)  # (2, T_max)
            batch[0, : ids.shape[1]], batch[1, : len(other)] = ids[0].cpu(), other
            ways = {f"+ {n} pad tokens": F.pad(ids, (0, n), value=tok.pad_id) for n in (3, 25)}  # (1, T + n)
            alone = model(ids)
            for how, x in {**ways, "batched with a longer one": batch.to(ctx.device)}.items():  # one check
                where = f"{when} model, review {i} {how}"
                ctx.assert_close(model(x)[:1], alone, name="padding does not change the logits", where=where)
        model.train()

    def summarize(self, ctx, run):
        if ctx.mode != "bench":  # the trained model's attention map and inference time: bench only
            return
        model, tok, config = run.model.eval(), self.tok, run.config
        text = min(self.test_texts[:20], key=len)  # a short held-out review: readable axes
        words, ids = tok.split(text)[:32], tok.encode(text)[:32][None].to(ctx.device)  # (1, T)
        ctx.heatmap(
            "attention map (last layer, mean over heads)",
            last_layer_map(model, ids),  # (T, T)
            x=words,
            y=words,
            x_label="key word",
            y_label="query word",
            caption="self-attention of the trained encoder on a held-out review",
        )
        xe = tok.encode_batch(self.test_texts[:256], config.max_len)[0].to(ctx.device)  # (256, max_len)
        ctx.measure("classify", forward_prepared(model, xe), config=f"eval batch {xe.shape[0]}, T={xe.shape[1]}")
