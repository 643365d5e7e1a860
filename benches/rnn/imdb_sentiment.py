"""5.03 Sentiment analysis (IMDB).

Compared: nothing against a baseline; a training run of an LSTM review classifier
(``models.sequence.SequenceModel`` with ``head="last"``: word embedding -> ``nn.LSTM``
over the packed batch -> the final state of each review's own last word -> 2 logits).

Data: real IMDB reviews (Maas et al. 2011) when ``--data-dir`` / ``$DRILLS_DATA_DIR``
holds ``aclImdb/`` (``drills data fetch imdb`` downloads it), read by
``harness.data.read_imdb``; else the labelled-synthetic reviews of
``harness.data.synthetic_reviews`` (templates, 20% opposite-polarity sentences,
negations), written to disk in the IMDB layout and read back through the same reader.

Check (tiny):

* the IMDB folder reader: synthetic reviews are written as
  ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (ratings 7-10 positive, 1-4
  negative, sentences joined with the ``<br />`` line breaks real reviews carry) and read
  back: every (label, text) pair comes back, the breaks turned into spaces;
* the tokenizer's vocabulary is built on the training split only: each of its words
  occurs in the training texts, and a word planted in one test review only encodes as
  ``<unk>``;
* trained on the files read back, the classifier is above chance on the test split:
  accuracy >= ``min_accuracy`` = 0.7 (chance: 0.5). Over seeds 0-4 (150 steps of 32
  reviews, LSTM 32) it reached 0.785-0.853.

A reader that swaps the pos/neg labels, a vocabulary fitted on train + test, and an
optimizer that never steps each fail it (tests/tasks/test_rnn_imdb_sentiment.py).

Bench: loss and test-accuracy curves, samples/s of the run, of one timed training step
and of classifying the test split.

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, ``drills
bench --task rnn.imdb_sentiment --no-save``; no real IMDB on this machine, so 4,000
synthetic reviews, LSTM 64, 300 steps): test accuracy 0.73 after 50 steps, 0.85 at the
end; one training step 44 ms = 730 reviews/s (IQR 64%: a busy machine), classifying
5.4k reviews/s. Packing matters for the ``last`` head: without it the final state would
be read after the padding of every review shorter than its batch's longest.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.data import GENERATORS, IMDB_CLASSES, WordTokenizer, read_imdb, synthetic_reviews
from harness.data.sets import TextClassificationSet
from harness.data.sources import resolve
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


def write_imdb(root: Path, split: str, data: TextClassificationSet, seed: int) -> None:
    """Write reviews in the aclImdb layout: ``<split>/<pos|neg>/<id>_<rating>.txt``."""
    g = torch.Generator().manual_seed(seed)
    for cls in IMDB_CLASSES:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
    for i, (text, label) in enumerate(zip(data.texts, data.labels.tolist())):
        rating = (
            int(torch.randint(7, 11, (1,), generator=g)) if label == 1 else int(torch.randint(1, 5, (1,), generator=g))
        )
        body = re.sub(r"([.!]) ", r"\1<br /><br />", text)  # reviews carry HTML line breaks
        (root / split / IMDB_CLASSES[label] / f"{i}_{rating}.txt").write_text(body, encoding="utf-8")


@task("rnn.imdb_sentiment", seed="5.03", title="sentiment analysis (IMDB)")
class ImdbSentiment(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": SentimentConfig(n_train=1000, n_test=400, emb=32, hidden=32, steps=150, lr=1e-2, min_accuracy=0.7),
        "cpu": SentimentConfig(
            n_train=4000, n_test=1000, emb=64, hidden=64, steps=300, real_per_class=1000, max_len=150
        ),
        "gpu": SentimentConfig(
            n_train=25000,
            n_test=25000,
            emb=128,
            hidden=256,
            steps=3000,
            batch_size=128,
            lr=2e-3,
            real_per_class=12500,
            max_len=400,
            eval_every=250,
        ),
    }

    #: reader and tokenizer fitting under test (tests plant broken ones)
    read_fn = staticmethod(read_imdb)

    def fit_tokenizer(
        self, train: TextClassificationSet, test: TextClassificationSet, cfg: SentimentConfig
    ) -> WordTokenizer:
        return WordTokenizer.fit(train.texts, max_size=cfg.vocab_size)

    # -- data -------------------------------------------------------------------------------
    def synthetic_files(self, root: Path, cfg: SentimentConfig, seed: int):
        """Write synthetic train/test reviews as IMDB folders under ``root``; return what was written."""
        train = synthetic_reviews(cfg.n_train, seed=seed)
        test = synthetic_reviews(cfg.n_test, seed=seed + 10_000)
        texts = list(test.texts)
        texts[0] = texts[0] + f" a {UNSEEN} moment ."
        test = dataclasses.replace(test, texts=texts)
        write_imdb(root, "train", train, seed)
        write_imdb(root, "test", test, seed + 1)
        return train, test

    def load(self, ctx, cfg: SentimentConfig, real: bool):
        """(train, test, description): real IMDB if asked and present, else synthetic files read back."""
        source = resolve("imdb")
        if real and source.kind == "files":
            return (
                self.read_fn(source.path, "train", max_per_class=cfg.real_per_class),
                self.read_fn(source.path, "test", max_per_class=cfg.real_per_class),
                str(source),
            )
        root = ctx.workdir / "aclImdb"
        if not (root / "train").is_dir():
            self.synthetic_files(root, cfg, ctx.rng_seed)
        train, test = self.read_fn(root, "train"), self.read_fn(root, "test")
        return train, test, f"synthetic: {GENERATORS['reviews']} (seed {ctx.rng_seed}), via IMDB-layout files"

    def encode(self, tok: WordTokenizer, data: TextClassificationSet, cfg: SentimentConfig):
        ids, lengths = tok.encode_batch(data.texts, max_len=cfg.max_len)  # (N, T), (N,)
        return ids, lengths.clamp(min=1), data.labels

    def model(self, cfg: SentimentConfig, vocab: int, device, dtype, seed: int) -> SequenceModel:
        torch.manual_seed(seed)
        mc = SequenceModelConfig(
            vocab_size=vocab, input_size=cfg.emb, hidden_size=cfg.hidden, output_size=2, head="last"
        )
        return SequenceModel(mc).to(device, dtype)

    # -- training ---------------------------------------------------------------------------
    def train_step(self, model, opt, batch) -> torch.Tensor:
        ids, lengths, y = batch
        loss = F.cross_entropy(model(ids, lengths), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    @torch.no_grad()
    def accuracy(self, model, data, device, batch: int = 500) -> float:
        ids, lengths, y = data
        model.eval()
        correct = 0
        for i in range(0, ids.shape[0], batch):
            n = int(lengths[i : i + batch].max())
            pred = model(ids[i : i + batch, :n].to(device), lengths[i : i + batch]).argmax(-1).cpu()
            correct += int((pred == y[i : i + batch]).sum())
        model.train()
        return correct / ids.shape[0]

    def batch(self, data, idx, device):
        ids, lengths, y = data
        n = int(lengths[idx].max())
        return ids[idx, :n].to(device), lengths[idx], y[idx].to(device)

    def run(self, ctx, cfg: SentimentConfig, tok, train, test, curve: bool = False):
        model = self.model(cfg, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        g = torch.Generator().manual_seed(ctx.rng_seed)
        losses, ev_steps, ev_acc, seconds = [], [], [], 0.0
        for step in range(1, cfg.steps + 1):
            b = self.batch(train, torch.randint(0, train[0].shape[0], (cfg.batch_size,), generator=g), ctx.device)
            ctx.sync()
            t0 = time.perf_counter()
            losses.append(self.train_step(model, opt, b))
            ctx.sync()
            seconds += time.perf_counter() - t0
            if (curve and step % cfg.eval_every == 0) or step == cfg.steps:
                ev_steps.append(step)
                ev_acc.append(self.accuracy(model, test, ctx.device))
        return model, torch.stack(losses).float().cpu().tolist(), ev_steps, ev_acc, seconds

    # -- check ------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        root = ctx.workdir / "aclImdb"
        written = self.synthetic_files(root, cfg, ctx.rng_seed)
        ctx.expect(
            any((root / "train" / "pos").glob("*_10.txt")) or any((root / "train" / "pos").glob("*_7.txt")),
            "no <id>_<rating>.txt files were written",
            name="IMDB layout written",
        )
        train, test, _ = self.load(ctx, cfg, real=False)
        for split, w, r in (("train", written[0], train), ("test", written[1], test)):
            want = sorted(zip(w.labels.tolist(), w.texts))
            got = sorted(zip(r.labels.tolist(), (" ".join(t.split()) for t in r.texts)))
            ctx.expect(
                got == want,
                f"IMDB round trip ({split}): {sum(a != b for a, b in zip(got, want))} of "
                f"{len(want)} (label, text) pairs differ from what was written",
                name="IMDB round trip",
            )
        tok = self.fit_tokenizer(train, test, cfg)
        train_words = {w for t in train.texts for w in tok.split(t)}
        extra = sorted(set(tok.itos[2:]) - train_words)
        ctx.expect(
            not extra,
            f"vocabulary holds words absent from the training texts: {extra[:5]}",
            name="vocabulary from train only",
        )
        unseen = next(t for t in test.texts if UNSEEN in t)
        ctx.expect(
            tok.unk_id in tok.encode(unseen).tolist(),
            f"the test-only word {UNSEEN!r} did not encode as <unk>",
            name="test-only words are <unk>",
        )
        tr, te = self.encode(tok, train, cfg), self.encode(tok, test, cfg)
        _, losses, _, acc, seconds = self.run(ctx, cfg, tok, tr, te)
        ctx.metric("check_test_accuracy", acc[-1])
        ctx.metric("check_train_samples_per_s", cfg.steps * cfg.batch_size / seconds)
        ctx.expect(
            acc[-1] >= cfg.min_accuracy,
            f"test accuracy {acc[-1]:.3f} after {cfg.steps} steps is below {cfg.min_accuracy}",
            name=f"test accuracy >= {cfg.min_accuracy}",
        )

    # -- bench ------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: SentimentConfig) -> Prepared:
        train, test, _ = self.load(ctx, config, real=True)
        tok = self.fit_tokenizer(train, test, config)
        tr = self.encode(tok, train, config)
        model = self.model(config, len(tok), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        b = self.batch(tr, torch.arange(config.batch_size), ctx.device)
        return Prepared(fn=lambda: self.train_step(model, opt, b), items=config.batch_size, item_unit="samples")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        train, test, desc = self.load(ctx, cfg, real=True)
        tok = self.fit_tokenizer(train, test, cfg)
        tr, te = self.encode(tok, train, cfg), self.encode(tok, test, cfg)
        ctx.note(
            f"data: {desc}; {len(train)} train / {len(test)} test reviews, vocabulary {len(tok)}, "
            f"mean length {float(tr[1].float().mean()):.0f} words (max {cfg.max_len})"
        )
        model, losses, ev_steps, ev_acc, seconds = self.run(ctx, cfg, tok, tr, te, curve=True)
        ctx.curve("train loss", list(range(1, len(losses) + 1)), losses, y_label="cross-entropy", series="lstm")
        ctx.curve("test accuracy", ev_steps, ev_acc, y_label="accuracy", series="lstm")
        ctx.metric("final_accuracy", ev_acc[-1])
        ctx.metric("train_samples_per_s", cfg.steps * cfg.batch_size / seconds)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        ctx.measure(
            "classify",
            Prepared(fn=lambda: self.accuracy(model, te, ctx.device), items=te[0].shape[0], item_unit="samples"),
            config=cfg,
        )
