"""6.03 Transformer on news headlines.

Trains ``models.transformer.EncoderClassifier`` to tell a headline's topic. Real data: a
``headlines/`` folder under ``$DRILLS_DATA_DIR`` with CSV or TSV files holding a ``headline`` and a
``category`` column (the Kaggle "News Category Dataset" or AG News once converted), read by
``harness.data.headlines.load_headlines``; without it, the SYNTHETIC stand-in
``harness.data.synthetic_headlines`` (4 topics; 2-4 topic keywords, 10 % of them from another
topic, among filler words shared by all topics). The check reads back a ``train.csv`` and a
``test.tsv`` it wrote with the traps below and must refuse a short row; then the model must learn
(held-out accuracy >= 60 %, chance 25 %).

Lesson: topic keywords make this easy for attention plus mean pooling; headlines are short, so
throughput is high. The reader's traps are all in the file: quoted commas, a TSV next to a CSV, and
each file numbering its own sorted class names, which the loader renumbers by the training file's.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import TrainingRun, task
from harness.claims import metric
from harness.data import DataFormatError, WordTokenizer
from harness.data.headlines import load_headlines, write_headlines
from harness.mutants import Mutant, tiny_changed
from harness.trained import Budget, Recipe, default_budget, expect_accuracy, expect_learns, forward_prepared
from kernels.layers.attention_maps import last_layer_map
from kernels.text.headlines_wrong import hides_short_row, ignores_files, per_file_numbering, tsv_as_csv
from models.transformer import EncoderClassifier, preset


@dataclasses.dataclass(frozen=True)
class HeadlineConfig:
    """Data size, model and training budget."""

    model: str = "tiny"
    """models.transformer preset"""
    n_train: int = 2000
    """training headlines (synthetic count, or a cap on real files)"""
    n_test: int = 400
    """held-out headlines"""
    topics: int = 4
    """topics of the synthetic stand-in (2..6)"""
    max_len: int = 24
    """tokens kept per headline"""
    epochs: int = 2
    """passes over the training headlines"""
    batch_size: int = 32
    """headlines per optimizer step"""
    lr: float = 3e-3
    """AdamW learning rate"""
    target_accuracy: float = 0.6
    """held-out accuracy the check requires (chance 1/topics)"""

    def label(self) -> str:
        return f"{self.model},n={self.n_train},topics={self.topics},epochs={self.epochs},bs={self.batch_size}"


WRITTEN_TRAIN = [  # rows the check writes: (headline, category); quoting and a doubled quote on purpose
    ("Stocks rally as rates hold", "business"),
    ('Coach says "we will win, again"', "sports"),
    ("Parliament passes budget", "world"),
    ("Telescope finds water, maybe", "science"),
    ("Merger talks stall", "business"),
]
WRITTEN_TEST = [("Striker injured before final", "sports"), ("Summit ends without deal", "world")]


@task("transformers.news_headlines", seed="6.03", title="Transformer on news headlines")
class NewsHeadlines(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": HeadlineConfig(),
        "cpu": HeadlineConfig(n_train=6000, n_test=1000, topics=6, max_len=32, epochs=2),
        "gpu": HeadlineConfig(
            model="base", n_train=200_000, n_test=10_000, topics=6, max_len=48, epochs=3, lr=3e-4, batch_size=128
        ),
    }
    metrics = {"final_accuracy": "held-out topic accuracy at the end of training, share in [0, 1]"}
    claims = (metric("final_accuracy", ">=", 0.9, text="the tiny encoder tells >= 90 % of held-out headlines' topics"),)
    loader = staticmethod(load_headlines)  # the loading path under test
    mutants = tuple(
        Mutant(name, what, {"loader": staticmethod(wrong)}, match=match)
        for name, what, wrong, match in (
            ("ignores_files", "the loader ignores the files", ignores_files, "headlines read"),
            ("tsv_as_csv", "a TSV read as CSV", tsv_as_csv, "test.tsv"),
            ("per_file_numbering", "each file keeps its own label numbering", per_file_numbering, "labels"),
            ("hides_short_row", "a short row is hidden, not refused", hides_short_row, "short row"),
        )
    ) + (Mutant("does_not_learn", "learning rate 0", tiny_changed(sizes, lr=0.0, epochs=1), match="loss"),)

    def check(self, ctx):
        folder = write_headlines(ctx.workdir / "headlines", {"train.csv": WRITTEN_TRAIN, "test.tsv": WRITTEN_TEST})
        load = lambda: self.loader(ctx.configs[0], ctx.workdir)
        try:
            tr, te, _ = load()
        except DataFormatError as e:  # a reader that cannot parse well-formed files fails the check
            ctx.expect(False, f"the written headline files were refused: {e}", name="written files read")
        classes = tuple(sorted({c for _, c in WRITTEN_TRAIN}))
        for got, rows, split in ((tr, WRITTEN_TRAIN, "train.csv"), (te, WRITTEN_TEST, "test.tsv")):
            texts, want = [h for h, _ in rows], [classes.index(c) for _, c in rows]
            ctx.expect(
                got.texts == texts, f"{split}: headlines read {got.texts} != written", name=f"headline texts ({split})"
            )
            ctx.expect(
                got.labels.tolist() == want and got.classes == classes,
                f"{split}: labels {got.labels.tolist()} / classes {got.classes} != written {want} / {classes}",
                name=f"headline labels ({split})",
            )
        (folder / "test.tsv").write_text("headline\tcategory\nA row without its label\n", encoding="utf-8")
        ctx.expect_raises(DataFormatError, load, match="test.tsv", name="short row refused, naming the file")
        super().check(ctx)  # the harness trains the recipe: properties() below

    def properties(self, ctx, run):
        expect_learns(ctx, run, ratio=0.7, window=10)
        chance = f" (chance {1 / run.config.topics:.2f})"
        expect_accuracy(ctx, run, run.config.target_accuracy, name="topic accuracy above chance", why=chance)

    def train_data(self, ctx, config):
        tr, self.te, desc = self.loader(config)
        self.tok, self.classes, self._n_train = WordTokenizer.fit(tr.texts), tr.classes, len(tr)  # recipe, budget
        x, xt = (self.tok.encode_batch(d.texts, config.max_len)[0] for d in (tr, self.te))  # (N, max_len) ids, padded
        ctx.note(f"data: {desc}; vocabulary {self.tok.vocab_size}, classes {list(tr.classes)}")
        return (x, tr.labels), (xt, self.te.labels)

    def budget(self, config) -> Budget:  # two evaluations per epoch (train_data ran first)
        return dataclasses.replace(default_budget(config), eval_every=max(1, self._n_train // config.batch_size // 2))

    def recipe(self, ctx, config) -> Recipe:
        model = EncoderClassifier(preset(config.model, max_len=config.max_len), self.tok.vocab_size, len(self.classes))
        return Recipe(model, lambda params: torch.optim.AdamW(params, lr=config.lr))

    def summarize(self, ctx, run):
        if ctx.mode != "bench":  # the trained model's attention map and inference time: bench only
            return
        model, tok, te, config = run.model.eval(), self.tok, self.te, run.config
        words, ids = tok.split(te.texts[0]), tok.encode(te.texts[0])[None].to(ctx.device)  # (1, T)
        ctx.heatmap(
            "attention map (last layer, mean over heads)",
            last_layer_map(model, ids),  # (T, T)
            x=words,
            y=words,
            x_label="key word",
            y_label="query word",
            caption=f"self-attention of the trained encoder on a held-out headline ({te.classes[int(te.labels[0])]})",
        )
        xe = tok.encode_batch(te.texts[:512], config.max_len)[0].to(ctx.device)  # (512, max_len)
        ctx.measure("classify", forward_prepared(model, xe), config=f"eval batch {xe.shape[0]}, T={xe.shape[1]}")
