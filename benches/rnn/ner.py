"""5.09 Named entity recognition.

Compared: nothing against a baseline; a training run of a BiLSTM tagger
(``models.sequence.SequenceModel``: word embedding -> bidirectional ``nn.LSTM`` -> one tag per
token) scored at the entity level as CoNLL's ``conlleval`` scores it
(``kernels.text.ner_metrics.conlleval``, a port of the Perl script's chunk rules).

Data: ``harness.data.synthetic_ner`` (templates filled from a gazetteer, BIO tags
PER/ORG/LOC/MISC); with ``conll2003/*train*`` (and ``*testb*``) under ``--data-dir`` the bench
reads the real CoNLL-2003 files instead (IOB1 tags converted to BIO).

Check (tiny):

* the CoNLL reader path: synthetic sentences written as a CoNLL-2003 file
  (``harness.data.writers.write_conll``: 4 columns, ``-DOCSTART-`` lines, IOB1 tags) and read
  back with ``harness.data.read_conll`` + ``iob1_to_bio`` equal what was written;
* the metric on worked examples with known scores (``kernels.text.ner_examples``): seqeval's
  README example, an I- without a B- (conlleval opens a chunk), a type change inside a chunk
  (two chunks), adjacent entities, a sentence break, a partial overlap, and P != R;
* a tiny tagger (embedding 16, BiLSTM 2 x 16, 80 steps on 600 sentences) reaches entity F1 >=
  ``min_f1`` = 0.9 on 600 held-out ones; over seeds 0-7 it reached 0.964-1.0.

Bench: loss and held-out F1 curves, tokens/s of a training step and of tagging, per-type scores.

Lesson: entity F1 counts a chunk only when its type and both boundaries are right. The synthetic
set is a gazetteer lookup: its F1 says the pipeline works, not that the tagger generalises (on
real CoNLL-2003 BiLSTM(-CRF) taggers report F1 of 0.85-0.91: Huang et al. 2015, Lample et al. 2016).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data import iob1_to_bio, read_conll, synthetic_ner
from harness.data.sets import TaggedSentences
from harness.data.tagging import encode_tagged, load_tagged, tag_list, word_vocab
from harness.data.writers import write_conll
from harness.mutants import Mutant
from harness.train_text import length_batch, train_loop
from kernels.text import ner_metrics_wrong as wrong
from kernels.text.ner_examples import PER_TYPE, WORKED_EXAMPLES, span_scorer
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


def _scored_by(span_fn) -> dict:  # the check's scorer replaced by one built on a wrong chunking rule
    return {"score_fn": staticmethod(span_scorer(span_fn))}


@task("rnn.ner", seed="5.09", title="named entity recognition")
class Ner(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": NerConfig(n_train=600, n_test=600, emb=16, hidden=16, steps=80),
        "cpu": NerConfig(n_train=5000, n_test=1000, emb=64, hidden=64, steps=400),
        "gpu": NerConfig(n_train=20000, n_test=3000, emb=128, hidden=256, steps=2000, batch_size=128),
    }
    metrics = {"entity_f1": "held-out entity-level F1 (conlleval), in [0, 1]"}
    claims = (
        metric("entity_f1", ">=", 0.95, text="the BiLSTM tagger reaches entity F1 >= 0.95 on held-out sentences"),
    )
    #: the scorer and reader under test
    score_fn = staticmethod(conlleval)
    read_fn = staticmethod(read_conll)
    mutants = (
        Mutant(
            "token_level",
            "counts tagged tokens instead of chunks",
            _scored_by(wrong.token_spans),
            match="worked example",
        ),
        Mutant(
            "strict_iob2",
            "drops an I- without a B- (strict IOB2 mode)",
            _scored_by(wrong.strict_spans),
            match="I- without B-",
        ),
        Mutant(
            "merge_across_types",
            "merges chunks across a type change",
            _scored_by(wrong.merged_spans),
            match="type change",
        ),
        Mutant(
            "reader_drops_last",
            "the reader loses the last sentence",
            {"read_fn": staticmethod(wrong.reader_drops_last)},
            match="CoNLL round trip",
        ),
    )

    def read(self, path: Path) -> TaggedSentences:
        data = self.read_fn(path)
        return dataclasses.replace(data, tags=[iob1_to_bio(t) for t in data.tags])

    def data(self, cfg: NerConfig, seed: int, real: bool = False) -> tuple[TaggedSentences, TaggedSentences, str]:
        return load_tagged(cfg.n_train, cfg.n_test, seed=seed, real=real, read=self.read)

    def model(self, cfg: NerConfig, vocab: int, n_tags: int, device, dtype, seed: int) -> SequenceModel:
        torch.manual_seed(seed)
        mc = SequenceModelConfig(vocab, cfg.emb, cfg.hidden, n_tags, bidirectional=True, head="per_step")
        return SequenceModel(mc).to(device, dtype)

    def train_step(self, model, opt, batch) -> torch.Tensor:
        ids, lengths, y = batch
        mask = torch.arange(y.shape[1], device=y.device)[None, :] < lengths.to(y.device)[:, None]  # (B, T)
        loss = F.cross_entropy(model(ids, lengths)[mask], y[mask])  # real tokens only
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    @torch.no_grad()
    def tag(self, model, ids, lengths, tags: list[str]) -> list[list[str]]:
        pred = model.eval()(ids, lengths).argmax(-1).cpu()  # (N, T)
        model.train()
        return [[tags[i] for i in row[:n]] for row, n in zip(pred.tolist(), lengths.tolist())]

    def run(self, ctx, cfg: NerConfig, train: TaggedSentences, test: TaggedSentences, curve: bool = False):
        words, tags = word_vocab(train), tag_list(train)
        x, y, n = encode_tagged(train, words, tags)
        xt, _, nt = (t.to(ctx.device) for t in encode_tagged(test, words, tags))
        model = self.model(cfg, len(words), len(tags), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        drawn = []  # rows of every batch, for the token count

        def draw(g):
            drawn.append(torch.randint(0, x.shape[0], (cfg.batch_size,), generator=g))
            return length_batch((x, n, y), drawn[-1], ctx.device)  # (ids, lengths, tags)

        f1 = lambda m: self.score_fn(test.tags, self.tag(m, xt, nt, tags)).f1
        losses, ev_steps, ev_f1, seconds = train_loop(
            model,
            opt,
            draw,
            self.train_step,
            steps=cfg.steps,
            seed=ctx.rng_seed,
            evaluate=f1 if curve else None,
            eval_every=cfg.eval_every,
        )
        scores = self.score_fn(test.tags, self.tag(model, xt, nt, tags))
        tokens = int(sum(n[i].sum() for i in drawn))
        return scores, losses, seconds, tokens, ev_steps, ev_f1, model, (xt, nt, tags)

    def check_reader(self, ctx) -> None:
        data, path = synthetic_ner(25, seed=ctx.rng_seed), ctx.workdir / "eng.train"
        write_conll(path, data)
        text, back = path.read_text(encoding="utf-8"), self.read(path)
        layout = text.startswith("-DOCSTART- -X- -X- O") and "\n\n" in text and " I-PER" in text
        ctx.expect(layout, "the file written is not in CoNLL-2003 layout", name="CoNLL file written")
        msg = f"CoNLL round trip: read {len(back)} sentences back, wrote {len(data)}; the tokens differ"
        ctx.expect(back.sentences == data.sentences, msg, name="CoNLL round trip: tokens")
        msg = "CoNLL round trip: tags read back (IOB1 -> BIO) differ from the BIO tags written"
        ctx.expect(back.tags == data.tags, msg, name="CoNLL round trip: tags")

    def check_metric(self, ctx) -> None:
        for name, gold, pred, (correct, n_gold, n_guess, p, r, f1, acc) in WORKED_EXAMPLES:
            s = self.score_fn(gold, pred)
            got = (s.overall.correct, s.overall.gold, s.overall.guessed)
            msg = f"worked example {name!r}: (correct, gold, guessed) = {got}, conlleval: {(correct, n_gold, n_guess)}"
            ctx.expect(got == (correct, n_gold, n_guess), msg, name="worked examples: chunk counts")
            got_prf = torch.tensor([s.precision, s.recall, s.f1, s.accuracy], dtype=torch.float64)
            want = torch.tensor([p, r, f1, acc], dtype=torch.float64)
            ctx.assert_close(got_prf, want, name="worked examples: P/R/F1", where=f"worked example {name!r}")
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
        msg = f"held-out entity F1 {scores.f1:.3f} below {cfg.min_f1} after {cfg.steps} steps"
        ctx.expect(scores.f1 >= cfg.min_f1, msg, name=f"entity F1 >= {cfg.min_f1}")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        train, test, desc = self.data(cfg, ctx.rng_seed, real=True)
        ctx.note(f"data: {desc}; {len(train)} train / {len(test)} held-out sentences")
        out = self.run(ctx, cfg, train, test, curve=True)
        scores, losses, seconds, tokens, ev_steps, ev_f1, model, (xt, nt, tags) = out
        ctx.curve("train loss", list(range(1, len(losses) + 1)), losses, y_label="cross-entropy", series="bilstm")
        ctx.curve("held-out entity F1", ev_steps, ev_f1, y_label="F1 (conlleval)", series="bilstm")
        for k in ("f1", "precision", "recall"):
            ctx.metric(f"entity_{k}", getattr(scores, k))
        ctx.metric("train_tokens_per_s", tokens / seconds)
        rows = [
            {"type": t, **{k: round(getattr(v, k), 4) for k in ("precision", "recall", "f1")}, "gold": v.gold}
            for t, v in scores.per_type.items()
        ]
        ctx.table("per-type scores", rows)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        tag = Prepared(fn=lambda: self.tag(model, xt, nt, tags), items=int(nt.sum()), item_unit="tokens")
        ctx.measure("tag", tag, config=cfg)

    def prepare(self, ctx, impl: str, config: NerConfig) -> Prepared:
        train, _, _ = self.data(config, ctx.rng_seed, real=True)
        words, tags = word_vocab(train), tag_list(train)
        x, y, n = encode_tagged(train, words, tags)
        model = self.model(config, len(words), len(tags), ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        b = config.batch_size
        batch = (x[:b].to(ctx.device), n[:b], y[:b].to(ctx.device))
        return Prepared(fn=lambda: self.train_step(model, opt, batch), items=int(n[:b].sum()), item_unit="tokens")
