"""5.09 Named entity recognition.

Compared: nothing against a baseline; a training run of a BiLSTM tagger
(``models.sequence.SequenceModel``: word embedding -> bidirectional ``nn.LSTM`` -> one
tag per token) scored at the entity level as CoNLL's ``conlleval`` scores it
(``kernels.text.ner_metrics.conlleval``: a port of the Perl script's chunk rules).

Data: the synthetic NER generator of ``harness.data.synthetic_ner`` (labelled synthetic:
templates filled from a gazetteer, BIO tags PER/ORG/LOC/MISC); with ``--data-dir`` (or
``$DRILLS_DATA_DIR``) holding ``conll2003/*train*`` (and ``*test*``/``*testb*``) the bench
reads the real CoNLL-2003 files instead (IOB1 tags converted to BIO).

Check (tiny):

* the CoNLL reader path: synthetic sentences are written as a CoNLL-2003 file (4 columns
  token/POS/chunk/tag, ``-DOCSTART-`` lines, blank lines between sentences, tags in the
  original IOB1 scheme) into the task's scratch folder, read back with
  ``harness.data.read_conll`` and converted with ``iob1_to_bio``: tokens and tags equal
  what was written;
* the metric on worked examples with known scores, boundary cases included: seqeval's
  README example (P = R = F1 = 0.5), an I- without a B- (conlleval opens a chunk: F1 = 1),
  a type change inside a chunk (B-PER I-LOC is two chunks: F1 = 0), adjacent entities
  (B-PER B-PER is two chunks, B-PER I-PER one), a chunk split by a sentence break, a
  partial overlap, and P != R (P = 1, R = 2/3, F1 = 0.8, with per-type scores);
* a tiny tagger (embedding 16, BiLSTM 2 x 16) trained 80 steps on 600 synthetic
  sentences reaches entity F1 >= ``min_f1`` = 0.9 on 600 held-out ones (vocabulary from
  the training split only); over seeds 0-7 it reached 0.964-1.0 (50 steps: 0.75-0.88).

Counting tokens instead of chunks, dropping an I- without a B- (strict IOB2 mode),
merging chunks across a type change, and a reader that loses the last sentence each fail
it (tests/tasks/test_rnn_ner.py).

Bench: the loss and held-out F1 curves, training tokens/s over the run, one timed
training step and one timed tagging pass (tokens/s each).

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, ``drills
bench --task rnn.ner --no-save``; 5,000 synthetic sentences, BiLSTM 2 x 64, 400 steps):
held-out F1 1.0 from the first evaluation (step 50) on; one training step 22 ms = 15k
tokens/s, tagging 122k tokens/s. The synthetic set is a gazetteer lookup, so its F1
says the pipeline works, not that the tagger generalises: real CoNLL-2003 (``--data-dir``)
has unseen names in its test split, where published BiLSTM(-CRF) taggers report F1 of
about 0.85-0.91 (Huang et al. 2015; Lample et al. 2016).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.data import WordTokenizer, iob1_to_bio, read_conll, synthetic_ner
from harness.data.sets import TaggedSentences
from harness.data.sources import resolve
from kernels.text.ner_metrics import conlleval
from models.sequence import SequenceModel, SequenceModelConfig


@dataclasses.dataclass(frozen=True)
class NerConfig:
    """Data, model and budget of one tagging run."""

    n_train: int
    """synthetic training sentences"""
    n_test: int
    """synthetic held-out sentences (another seed)"""
    emb: int
    """word embedding width"""
    hidden: int
    """LSTM width per direction"""
    steps: int
    """Adam steps"""
    batch_size: int = 32
    """sentences per step"""
    lr: float = 1e-2
    """Adam learning rate"""
    min_f1: float = 0.9
    """held-out entity F1 the check demands, in [0, 1]"""
    eval_every: int = 50
    """steps between held-out F1 evaluations on the bench's curve"""

    def label(self) -> str:
        return f"emb={self.emb},H={self.hidden},steps={self.steps},bs={self.batch_size}"


# (name, gold, predicted, (correct, gold chunks, guessed chunks, P, R, F1, token accuracy)),
# derived by hand from conlleval's rules (see kernels/text/ner_metrics.py)
WORKED_EXAMPLES = [
    (
        "seqeval README example",
        [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]],
        [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]],
        (1, 2, 2, 0.5, 0.5, 0.5, 0.8),
    ),
    (
        "I- without B- opens a chunk",
        [["B-PER", "I-PER", "O"]],
        [["I-PER", "I-PER", "O"]],
        (1, 1, 1, 1.0, 1.0, 1.0, 2 / 3),
    ),
    (
        "type change inside a chunk",
        [["B-PER", "I-PER", "O"]],
        [["B-PER", "I-LOC", "O"]],
        (0, 1, 2, 0.0, 0.0, 0.0, 2 / 3),
    ),
    (
        "adjacent entities of one type",
        [["B-PER", "B-PER", "O"]],
        [["B-PER", "I-PER", "O"]],
        (0, 2, 1, 0.0, 0.0, 0.0, 2 / 3),
    ),
    (
        "adjacent entities of two types",
        [["B-PER", "B-LOC", "I-LOC"]],
        [["B-PER", "B-LOC", "I-LOC"]],
        (2, 2, 2, 1.0, 1.0, 1.0, 1.0),
    ),
    (
        "sentence break ends a chunk",
        [["O", "B-LOC"], ["I-LOC", "O"]],
        [["O", "B-LOC"], ["B-LOC", "O"]],
        (2, 2, 2, 1.0, 1.0, 1.0, 0.75),
    ),
    (
        "partial overlap",
        [["B-ORG", "I-ORG", "I-ORG", "O"]],
        [["B-ORG", "I-ORG", "O", "O"]],
        (0, 1, 1, 0.0, 0.0, 0.0, 0.75),
    ),
    (
        "precision != recall",
        [["B-PER", "O", "B-LOC", "O", "B-ORG"]],
        [["B-PER", "O", "B-LOC", "O", "O"]],
        (2, 3, 2, 1.0, 2 / 3, 0.8, 0.8),
    ),
]
#: per-type scores of the last example: type -> (P, R, F1)
PER_TYPE = {"PER": (1.0, 1.0, 1.0), "LOC": (1.0, 1.0, 1.0), "ORG": (0.0, 0.0, 0.0)}


def bio_to_iob1(tags: list[str]) -> list[str]:
    """BIO -> IOB1 (CoNLL-2003's scheme): B-X only where it follows an X chunk directly."""
    out, prev = [], "O"
    for t in tags:
        if t.startswith("B-") and not (prev != "O" and prev[2:] == t[2:]):
            t = "I-" + t[2:]
        out.append(t)
        prev = t
    return out


def write_conll(path: Path, data: TaggedSentences, docs: int = 2) -> None:
    """Write sentences as a CoNLL-2003 file: ``token POS chunk tag`` (IOB1), documents
    opened by ``-DOCSTART- -X- -X- O``, blank lines after every sentence."""
    lines, per_doc = [], max(1, len(data) // docs)
    for i, (toks, tags) in enumerate(zip(data.sentences, data.tags)):
        if i % per_doc == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        lines += [f"{w} NNP I-NP {t}" for w, t in zip(toks, bio_to_iob1(tags))] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


@task("rnn.ner", seed="5.09", title="named entity recognition")
class Ner(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": NerConfig(n_train=600, n_test=600, emb=16, hidden=16, steps=80),
        "cpu": NerConfig(n_train=5000, n_test=1000, emb=64, hidden=64, steps=400),
        "gpu": NerConfig(n_train=20000, n_test=3000, emb=128, hidden=256, steps=2000, batch_size=128),
    }

    #: the scorer and reader under test (tests plant broken ones)
    score_fn = staticmethod(conlleval)
    read_fn = staticmethod(read_conll)

    # -- data ----------------------------------------------------------------------------
    def read(self, path: Path) -> TaggedSentences:
        data = self.read_fn(path)
        return dataclasses.replace(data, tags=[iob1_to_bio(t) for t in data.tags])

    def data(self, cfg: NerConfig, seed: int, real: bool = False) -> tuple[TaggedSentences, TaggedSentences, str]:
        source = resolve("conll2003")
        if real and source.kind == "files":
            files = sorted(source.path.iterdir())
            train = next(f for f in files if "train" in f.name)
            test = next((f for f in files if "testb" in f.name or "test" in f.name), None)
            tr = self.read(train)
            te = self.read(test) if test else tr
            return tr, te, str(source)
        tr = synthetic_ner(cfg.n_train, seed=seed)
        return tr, synthetic_ner(cfg.n_test, seed=seed + 10_000), tr.description

    @staticmethod
    def vocab(train: TaggedSentences) -> WordTokenizer:
        """Lowercased training tokens, as they are (no re-splitting), most frequent first."""
        counts = Counter(w.lower() for s in train.sentences for w in s)
        return WordTokenizer(sorted(counts, key=lambda w: (-counts[w], w)))

    def encode(self, data: TaggedSentences, words: WordTokenizer, tags: list[str]):
        """(ids (N, T), tag ids (N, T), lengths (N,)); padded tags are 0 and masked by length."""
        index = {t: i for i, t in enumerate(tags)}
        lengths = torch.tensor([len(s) for s in data.sentences])
        ids = torch.zeros(len(data), int(lengths.max()), dtype=torch.int64)
        y = torch.zeros_like(ids)
        for i, (toks, tg) in enumerate(zip(data.sentences, data.tags)):
            ids[i, : len(toks)] = torch.tensor([words.stoi.get(w.lower(), words.unk_id) for w in toks])
            y[i, : len(tg)] = torch.tensor([index.get(t, index["O"]) for t in tg])
        return ids, y, lengths

    def model(self, cfg: NerConfig, vocab: int, n_tags: int, device, dtype, seed: int) -> SequenceModel:
        torch.manual_seed(seed)
        mc = SequenceModelConfig(
            vocab_size=vocab,
            input_size=cfg.emb,
            hidden_size=cfg.hidden,
            output_size=n_tags,
            bidirectional=True,
            head="per_step",
        )
        return SequenceModel(mc).to(device, dtype)

    # -- training ------------------------------------------------------------------------
    @staticmethod
    def loss(logits, y, lengths):
        mask = torch.arange(y.shape[1], device=y.device)[None, :] < lengths.to(y.device)[:, None]  # (B, T)
        return F.cross_entropy(logits[mask], y[mask])

    def train_step(self, model, opt, batch) -> torch.Tensor:
        ids, y, lengths = batch
        loss = self.loss(model(ids, lengths), y, lengths)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    @torch.no_grad()
    def tag(self, model, ids, lengths, tags: list[str]) -> list[list[str]]:
        model.eval()
        pred = model(ids, lengths).argmax(-1).cpu()  # (N, T)
        model.train()
        return [[tags[i] for i in row[:n]] for row, n in zip(pred.tolist(), lengths.tolist())]

    def run(self, ctx, cfg: NerConfig, train: TaggedSentences, test: TaggedSentences, curve: bool = False):
        """Train; returns (held-out scores, losses, seconds, tokens, eval steps, eval F1s, model, tensors)."""
        words = self.vocab(train)
        tags = list(train.tag_names) if "O" in train.tag_names else ["O", *train.tag_names]
        x, y, n = self.encode(train, words, tags)
        xt, _, nt = self.encode(test, words, tags)
        xt, nt = xt.to(ctx.device), nt.to(ctx.device)
        model = self.model(cfg, len(words), len(tags), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        g = torch.Generator().manual_seed(ctx.rng_seed)
        losses, seconds, tokens, ev_steps, ev_f1 = [], 0.0, 0, [], []
        for step in range(1, cfg.steps + 1):
            idx = torch.randint(0, x.shape[0], (cfg.batch_size,), generator=g)
            t = int(n[idx].max())
            batch = (x[idx, :t].to(ctx.device), y[idx, :t].to(ctx.device), n[idx])
            ctx.sync()
            t0 = time.perf_counter()
            losses.append(float(self.train_step(model, opt, batch)))
            ctx.sync()
            seconds += time.perf_counter() - t0
            tokens += int(n[idx].sum())
            if curve and (step % cfg.eval_every == 0 or step == cfg.steps):
                ev_steps.append(step)
                ev_f1.append(self.score_fn(test.tags, self.tag(model, xt, nt, tags)).f1)
        scores = self.score_fn(test.tags, self.tag(model, xt, nt, tags))
        return scores, losses, seconds, tokens, ev_steps, ev_f1, model, (xt, nt, tags)

    # -- check ---------------------------------------------------------------------------
    def check_reader(self, ctx) -> None:
        data = synthetic_ner(25, seed=ctx.rng_seed)
        path = ctx.workdir / "eng.train"
        write_conll(path, data)
        text = path.read_text(encoding="utf-8")
        ctx.expect(
            text.startswith("-DOCSTART- -X- -X- O") and "\n\n" in text and " I-PER" in text,
            "the file written is not in CoNLL-2003 layout",
            name="CoNLL file written",
        )
        back = self.read(path)
        ctx.expect(
            back.sentences == data.sentences,
            f"CoNLL round trip: read {len(back)} sentences back, wrote {len(data)}; the tokens differ",
            name="CoNLL round trip: tokens",
        )
        ctx.expect(
            back.tags == data.tags,
            "CoNLL round trip: tags read back (IOB1 -> BIO) differ from the BIO tags written",
            name="CoNLL round trip: tags",
        )

    def check_metric(self, ctx) -> None:
        for name, gold, pred, (correct, n_gold, n_guess, p, r, f1, acc) in WORKED_EXAMPLES:
            s = self.score_fn(gold, pred)
            got = (s.overall.correct, s.overall.gold, s.overall.guessed)
            ctx.expect(
                got == (correct, n_gold, n_guess),
                f"worked example {name!r}: (correct, gold, guessed) = {got}, "
                f"conlleval counts {(correct, n_gold, n_guess)}",
                name="worked examples: chunk counts",
            )
            ctx.assert_close(
                torch.tensor([s.precision, s.recall, s.f1, s.accuracy], dtype=torch.float64),
                torch.tensor([p, r, f1, acc], dtype=torch.float64),
                name="worked examples: P/R/F1",
                where=name,
            )
        s = self.score_fn(WORKED_EXAMPLES[-1][1], WORKED_EXAMPLES[-1][2])
        got = {t: (v.precision, v.recall, v.f1) for t, v in s.per_type.items()}
        ctx.expect(got == PER_TYPE, f"per-type scores {got}, expected {PER_TYPE}", name="worked examples: per type")

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        self.check_reader(ctx)
        self.check_metric(ctx)
        train, test, _ = self.data(cfg, ctx.rng_seed)
        scores, losses, seconds, tokens, *_ = self.run(ctx, cfg, train, test)
        ctx.metric("check_entity_f1", scores.f1)
        ctx.metric("check_train_tokens_per_s", tokens / seconds)
        ctx.expect(
            scores.f1 >= cfg.min_f1,
            f"held-out entity F1 {scores.f1:.3f} below {cfg.min_f1} after {cfg.steps} steps",
            name=f"entity F1 >= {cfg.min_f1}",
        )

    # -- bench ---------------------------------------------------------------------------
    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        train, test, desc = self.data(cfg, ctx.rng_seed, real=True)
        ctx.note(f"data: {desc}; {len(train)} train / {len(test)} held-out sentences")
        scores, losses, seconds, tokens, ev_steps, ev_f1, model, (xt, nt, tags) = self.run(
            ctx, cfg, train, test, curve=True
        )
        ctx.curve("train loss", list(range(1, len(losses) + 1)), losses, y_label="cross-entropy", series="bilstm")
        ctx.curve("held-out entity F1", ev_steps, ev_f1, y_label="F1 (conlleval)", series="bilstm")
        ctx.metric("entity_f1", scores.f1)
        ctx.metric("entity_precision", scores.precision)
        ctx.metric("entity_recall", scores.recall)
        ctx.metric("train_tokens_per_s", tokens / seconds)
        ctx.table(
            "per-type scores",
            [
                {
                    "type": t,
                    "precision": round(v.precision, 4),
                    "recall": round(v.recall, 4),
                    "f1": round(v.f1, 4),
                    "gold": v.gold,
                }
                for t, v in scores.per_type.items()
            ],
        )
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        n_tok = int(nt.sum())
        ctx.measure(
            "tag", Prepared(fn=lambda: self.tag(model, xt, nt, tags), items=n_tok, item_unit="tokens"), config=cfg
        )

    def prepare(self, ctx, impl: str, config: NerConfig) -> Prepared:
        train, _, _ = self.data(config, ctx.rng_seed, real=True)
        words = self.vocab(train)
        tags = list(train.tag_names) if "O" in train.tag_names else ["O", *train.tag_names]
        x, y, n = self.encode(train, words, tags)
        model = self.model(config, len(words), len(tags), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        b = config.batch_size
        batch = (x[:b].to(ctx.device), y[:b].to(ctx.device), n[:b])
        return Prepared(fn=lambda: self.train_step(model, opt, batch), items=int(n[:b].sum()), item_unit="tokens")
