"""5.03 Sentiment analysis (IMDB).

Compared: nothing against a baseline; a training run of an LSTM review classifier
(``models.sequence.SequenceModel`` with ``head="last"``: word embedding -> ``nn.LSTM`` over the
packed batch -> the final state of each review's own last word -> 2 logits).

Data: real IMDB reviews (Maas et al. 2011) when ``--data-dir`` holds ``aclImdb/`` (``drills data
fetch imdb``), else labelled-synthetic reviews (``harness.data.synthetic_reviews``) written in the
IMDB layout (``harness.data.imdb_files``); both read by ``harness.data.read_imdb``.

Check (tiny): the synthetic files come back from the reader as the (label, text) pairs written;
the vocabulary is built on the training split only (each word occurs in a training text; a word
planted in one test review encodes as ``<unk>``); test accuracy >= ``min_accuracy`` = 0.7
(chance 0.5; seeds 0-4: 0.785-0.853).

Lesson: packing matters for the ``last`` head: without it the final state would be read
after the padding of every review shorter than its batch's longest. On the synthetic
stand-in the accuracy says the pipeline works, not how well a model reads real reviews.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data import WordTokenizer, read_imdb
from harness.data.imdb_files import imdb_or_synthetic, pairs_differing, write_synthetic_imdb
from harness.data.sets import TextClassificationSet
from harness.mutants import Mutant
from harness.train_text import length_accuracy, length_batch, length_step, random_length_batches, train_loop
from kernels.text import imdb_wrong
from models.sequence import SequenceModel, SequenceModelConfig

UNSEEN = "zyzzyvas"  # planted in one test review only


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    """Data, model and budget of one sentiment run."""

    n_train: int
    """synthetic training reviews (balanced)"""
    n_test: int
    """synthetic test reviews (another seed)"""
    emb: int
    """word embedding width"""
    hidden: int
    """LSTM width"""
    steps: int
    """Adam steps"""
    batch_size: int = 32
    """reviews per step"""
    lr: float = 5e-3
    """Adam learning rate"""
    max_len: int = 200
    """words kept per review (real IMDB reviews average ~230)"""
    vocab_size: int = 20000
    """most frequent training words kept"""
    real_per_class: int = 2000
    """reviews per class and split read from real IMDB files (12,500 exist)"""
    min_accuracy: float = 0.75
    """test accuracy the check demands (chance is 0.5)"""
    eval_every: int = 50
    """steps between test evaluations on the bench's curve"""

    def label(self) -> str:
        return f"emb={self.emb},H={self.hidden},steps={self.steps},bs={self.batch_size},max_len={self.max_len}"


@task("rnn.imdb_sentiment", seed="5.03", title="sentiment analysis (IMDB)")
class ImdbSentiment(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": SentimentConfig(n_train=1000, n_test=400, emb=32, hidden=32, steps=150, lr=1e-2, min_accuracy=0.7),
        "cpu": SentimentConfig(4000, 1000, emb=64, hidden=64, steps=300, real_per_class=1000, max_len=150),
        "gpu": SentimentConfig(25000, 25000, emb=128, hidden=256, steps=3000, batch_size=128, lr=2e-3,
                               real_per_class=12500, max_len=400, eval_every=250),
    }  # fmt: skip

    metrics = {"final_accuracy": "test accuracy after the bench's training run, share in [0, 1]"}
    claims = (metric("final_accuracy", ">=", 0.8, text="the LSTM classifies >= 80 % of test reviews right"),)
    #: the reader and the training step under test
    read_fn = staticmethod(read_imdb)
    train_step = staticmethod(length_step)
    mutants = (
        Mutant("swaps_labels", "the reader swaps pos and neg", {"read_fn": staticmethod(imdb_wrong.swaps_labels)},
               match="IMDB round trip"),
        Mutant("vocab_on_all_text", "the vocabulary is fitted on train + test",
               {"fit_tokenizer": staticmethod(imdb_wrong.vocab_on_all_text)}, match="vocabulary holds words absent"),
        Mutant("never_steps", "the optimizer never steps", {"train_step": staticmethod(imdb_wrong.never_steps),
               "sizes": {"tiny": dataclasses.replace(sizes["tiny"], steps=10)}}, match="test accuracy"),
    )  # fmt: skip

    @staticmethod
    def fit_tokenizer(train: TextClassificationSet, test, cfg: SentimentConfig) -> WordTokenizer:
        return WordTokenizer.fit(train.texts, max_size=cfg.vocab_size)

    def load(self, ctx, cfg: SentimentConfig, real: bool):
        """(train, test, description): real IMDB if asked and present, else synthetic files read back."""
        n, seed = cfg.real_per_class, ctx.rng_seed
        args = dict(real=real, per_class=n, n_train=cfg.n_train, n_test=cfg.n_test, seed=seed, planted=UNSEEN)
        return imdb_or_synthetic(self.read_fn, ctx.workdir, **args)

    def encode(self, tok: WordTokenizer, data: TextClassificationSet, cfg: SentimentConfig):
        ids, lengths = tok.encode_batch(data.texts, max_len=cfg.max_len)  # (N, T), (N,)
        return ids, lengths.clamp(min=1), data.labels

    def model(self, ctx, cfg: SentimentConfig, vocab: int) -> SequenceModel:
        torch.manual_seed(ctx.rng_seed)  # the same initial weights in check, bench and the timed step
        mc = SequenceModelConfig(vocab, cfg.emb, cfg.hidden, output_size=2, head="last")
        return SequenceModel(mc).to(ctx.device, ctx.dtype)

    def run(self, ctx, cfg: SentimentConfig, vocab: int, train, test, curve: bool = False):
        """Adam on random batches of encoded ``train``: (model, losses, evaluation steps, test accuracies, seconds)."""
        model = self.model(ctx, cfg, vocab)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        return model, *train_loop(
            model, opt, random_length_batches(train, cfg.batch_size, ctx.device), self.train_step,
            steps=cfg.steps, seed=ctx.rng_seed,
            evaluate=lambda m: length_accuracy(m, test, ctx.device), eval_every=cfg.eval_every if curve else None,
        )  # fmt: skip

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        root = ctx.workdir / "aclImdb"
        written = write_synthetic_imdb(root, cfg.n_train, cfg.n_test, ctx.rng_seed, UNSEEN)
        layout = any((root / "train" / "pos").glob("*_10.txt")) or any((root / "train" / "pos").glob("*_7.txt"))
        ctx.expect(layout, "no <id>_<rating>.txt files were written", name="IMDB layout written")
        train, test, _ = self.load(ctx, cfg, real=False)
        for split, w, r in (("train", written[0], train), ("test", written[1], test)):
            bad = pairs_differing(w, r)
            msg = f"IMDB round trip ({split}): {bad} of {len(w)} (label, text) pairs differ from what was written"
            ctx.expect(bad == 0, msg, name="IMDB round trip")
        tok = self.fit_tokenizer(train, test, cfg)
        extra = sorted(set(tok.itos[2:]) - {w for t in train.texts for w in tok.split(t)})
        msg = f"vocabulary holds words absent from the training texts: {extra[:5]}"
        ctx.expect(not extra, msg, name="vocabulary from train only")
        unk = tok.unk_id in tok.encode(next(t for t in test.texts if UNSEEN in t)).tolist()
        ctx.expect(unk, f"the test-only word {UNSEEN!r} did not encode as <unk>", name="test-only words are <unk>")
        _, _, _, acc, seconds = self.run(ctx, cfg, len(tok), self.encode(tok, train, cfg), self.encode(tok, test, cfg))
        ctx.metric("check_test_accuracy", acc[-1])
        ctx.metric("check_train_samples_per_s", cfg.steps * cfg.batch_size / seconds)
        msg = f"test accuracy {acc[-1]:.3f} after {cfg.steps} steps is below {cfg.min_accuracy}"
        ctx.expect(acc[-1] >= cfg.min_accuracy, msg, name=f"test accuracy >= {cfg.min_accuracy}")

    def encoded(self, ctx, cfg: SentimentConfig):
        """The bench's data: (vocabulary size, encoded train, encoded test, description)."""
        train, test, desc = self.load(ctx, cfg, real=True)
        tok = self.fit_tokenizer(train, test, cfg)
        tr, te = self.encode(tok, train, cfg), self.encode(tok, test, cfg)
        desc = f"{desc}; {len(train)} train / {len(test)} test reviews, vocabulary {len(tok)}"
        return len(tok), tr, te, f"{desc}, mean length {float(tr[1].float().mean()):.0f} words (max {cfg.max_len})"

    def prepare(self, ctx, impl: str, config: SentimentConfig) -> Prepared:
        vocab, tr, _, _ = self.encoded(ctx, config)
        model = self.model(ctx, config, vocab)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        b = length_batch(tr, torch.arange(config.batch_size), ctx.device)
        return Prepared(fn=lambda: self.train_step(model, opt, b), items=config.batch_size, item_unit="samples")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        vocab, tr, te, desc = self.encoded(ctx, cfg)
        ctx.note(f"data: {desc}")
        model, losses, ev_steps, ev_acc, seconds = self.run(ctx, cfg, vocab, tr, te, curve=True)
        ctx.curve("train loss", list(range(1, len(losses) + 1)), losses, y_label="cross-entropy", series="lstm")
        ctx.curve("test accuracy", ev_steps, ev_acc, y_label="accuracy", series="lstm")
        ctx.metric("final_accuracy", ev_acc[-1])
        ctx.metric("train_samples_per_s", cfg.steps * cfg.batch_size / seconds)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        classify = Prepared(fn=lambda: length_accuracy(model, te, ctx.device), items=len(te[0]), item_unit="samples")
        ctx.measure("classify", classify, config=cfg)
