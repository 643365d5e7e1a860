"""5.04 Sequence-to-sequence translation.

Compared: nothing against a baseline; a training run of ``models.seq2seq.Seq2Seq``, a GRU
encoder-decoder (Bahdanau additive attention in the presets; 5.05 ``rnn.rnn_attention``
compares it with no attention and with Luong's), trained with teacher forcing and Adam,
then decoded greedily (``kernels.text.decoding.greedy``).

Data: the synthetic toy language of ``harness.data.synthetic_translation`` (labelled
synthetic: a fixed dictionary, adjectives moved after their noun and the verb to the end,
so the model must reorder, not just copy); ``harness.data.toy_translate`` gives the exact
answer for any source. With ``--data-dir`` (or ``$DRILLS_DATA_DIR``) holding
``translation/*.tsv`` (Tatoeba-style ``source<TAB>target`` lines), the bench trains on that
real corpus instead and scores against its references. Word-level vocabularies are built
on the training split only; target ids gain ``<bos>`` and ``<eos>``.

Check (tiny): (1) the loss ignores padding: ``masked_cross_entropy`` is unchanged, to the
bit, when the logits and the target ids at padded positions are replaced by random
values (out-of-range ids included), equals an independent per-sequence sum of
``F.cross_entropy`` over the real tokens divided by their count, and sends exactly zero
gradient to padded logits; (2) after the tiny budget the training loss has fallen below
a quarter of its start and greedy decoding of held-out sources matches
``toy_translate`` exactly on at least ``min_exact`` of them. A loss averaged over
padding, or an optimizer that never steps, fails it (tests/tasks/test_rnn_seq2seq.py).

Bench: the training run's loss curve and target tokens/s over the run; one timed
training step (tokens/s by the harness timer); greedy decoding of a batch of held-out
sources (tokens/s); exact-match and token accuracy on the held-out set.

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, ``drills
bench --task rnn.seq2seq --no-save``; 6,000 synthetic pairs of 5-9 words, GRU 64 with
Bahdanau attention, 250 steps of 32 pairs, 7.4 s): 100% of 500 held-out sentences
translated exactly; 8.6k target tokens/s over the run, 8.0k for one timed step; greedy
decoding 30k tokens/s (64 sources at once). The tiny check's budget (150 steps, GRU 32,
5-7 words) gave 94.5-100% exact over seeds 0-9. The decoder runs one step per target
token in Python in training too (attention needs each step's state), so time grows with
the target length, not only with the FLOPs.
"""

from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.data import WordTokenizer, read_parallel_tsv, synthetic_translation, toy_translate
from harness.data.sets import ParallelSet
from harness.data.sources import resolve
from kernels.text.decoding import greedy
from models.seq2seq import Seq2Seq, Seq2SeqConfig, masked_cross_entropy


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    """Data, model and budget of one translation run."""

    n_train: int
    """training sentence pairs (synthetic: drawn with seed = run seed)"""
    n_test: int
    """held-out pairs (synthetic: another seed, so mostly unseen sentences)"""
    max_adjectives: int
    """synthetic sources have 0..max_adjectives adjectives per noun phrase: 5..5+2k words"""
    hidden: int
    """H: GRU state width (embeddings are H/2 wide)"""
    steps: int
    """optimizer steps (the budget)"""
    batch_size: int = 32
    """sentence pairs per step"""
    lr: float = 1e-2
    """Adam learning rate (gradients clipped to norm 1)"""
    attention: str = "bahdanau"
    """"none", "bahdanau" or "luong" (models.seq2seq)"""
    min_exact: float = 0.8
    """share of held-out sentences the check demands translated exactly, in [0, 1]"""

    def label(self) -> str:
        return f"H={self.hidden},attn={self.attention},steps={self.steps},bs={self.batch_size}"


@dataclasses.dataclass
class Encoded:
    """A parallel set as padded id tensors: src (N, S), src_len (N,), tgt_in/tgt_out (N, T+1), tgt_len (N,)."""

    src: torch.Tensor
    src_len: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_len: torch.Tensor
    pairs: ParallelSet


class Vocab:
    """Source and target word tokenizers fitted on the training pairs; target bos/eos ids."""

    def __init__(self, train: ParallelSet):
        self.src = WordTokenizer.fit(train.sources)
        self.tgt = WordTokenizer.fit(train.targets)
        self.bos, self.eos = len(self.tgt), len(self.tgt) + 1  # appended after the words
        self.tgt_size = len(self.tgt) + 2

    def encode(self, pairs: ParallelSet) -> Encoded:
        src, src_len = self.src.encode_batch(pairs.sources)
        tgt, tgt_len = self.tgt.encode_batch(pairs.targets)
        n = tgt.shape[0]
        tgt_in = torch.cat([torch.full((n, 1), self.bos), tgt], dim=1)  # (N, T+1): bos y1 .. yT
        tgt_out = torch.cat([tgt, torch.zeros(n, 1, dtype=torch.int64)], dim=1)  # (N, T+1): y1 .. yT eos
        tgt_out[torch.arange(n), tgt_len] = self.eos
        return Encoded(src, src_len, tgt_in, tgt_out, tgt_len + 1, pairs)

    def decode(self, ids: list[int]) -> str:
        return self.tgt.decode([i for i in ids if i < len(self.tgt)])


@task("rnn.seq2seq", seed="5.04", title="sequence-to-sequence translation")
class Seq2seqTranslation(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": TranslationConfig(n_train=2000, n_test=200, max_adjectives=1, hidden=32, steps=150),
        "cpu": TranslationConfig(n_train=6000, n_test=500, max_adjectives=2, hidden=64, steps=250, lr=5e-3),
        "gpu": TranslationConfig(
            n_train=50000, n_test=2000, max_adjectives=3, hidden=256, steps=3000, lr=1e-3, batch_size=256
        ),
    }

    #: the loss the task trains with (tests plant wrong ones here)
    loss_fn = staticmethod(masked_cross_entropy)

    # -- data ----------------------------------------------------------------------------
    def data(self, cfg: TranslationConfig, seed: int, real: bool = False) -> tuple[Vocab, Encoded, Encoded, str]:
        """(vocab, train, test, source description): real TSV files when asked and present."""
        source = resolve("translation")
        if real and source.kind == "files":
            files = sorted(p for p in source.path.iterdir() if p.suffix in (".tsv", ".txt"))
            pairs = read_parallel_tsv(files[0])
            n_test = max(1, len(pairs) // 10)
            train = ParallelSet(pairs.sources[n_test:], pairs.targets[n_test:], pairs.description)
            test = ParallelSet(pairs.sources[:n_test], pairs.targets[:n_test], pairs.description)
            desc = str(source)
        else:
            train = synthetic_translation(cfg.n_train, seed=seed, max_adjectives=cfg.max_adjectives)
            test = synthetic_translation(cfg.n_test, seed=seed + 10_000, max_adjectives=cfg.max_adjectives)
            desc = train.description
        vocab = Vocab(train)
        return vocab, vocab.encode(train), vocab.encode(test), desc

    def model(self, cfg: TranslationConfig, vocab: Vocab, attention: str, device, dtype, seed: int) -> Seq2Seq:
        torch.manual_seed(seed)
        mc = Seq2SeqConfig(
            src_vocab=len(vocab.src),
            tgt_vocab=vocab.tgt_size,
            emb=cfg.hidden // 2,
            hidden=cfg.hidden,
            attention=attention,
            attn_dim=cfg.hidden,
        )
        return Seq2Seq(mc).to(device, dtype)

    # -- training ------------------------------------------------------------------------
    def batch(self, enc: Encoded, idx: torch.Tensor, device) -> tuple[torch.Tensor, ...]:
        t = int(enc.tgt_len[idx].max())  # trim the padding columns no row of this batch needs
        s = int(enc.src_len[idx].max())
        return tuple(
            x.to(device)
            for x in (enc.src[idx, :s], enc.src_len[idx], enc.tgt_in[idx, :t], enc.tgt_out[idx, :t], enc.tgt_len[idx])
        )

    def train_step(self, model, opt, batch) -> torch.Tensor:
        src, src_len, tgt_in, tgt_out, tgt_len = batch
        loss = self.loss_fn(model(src, src_len, tgt_in), tgt_out, tgt_len)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.detach()

    def train(self, ctx, cfg: TranslationConfig, vocab: Vocab, train: Encoded, attention: str, seed: int):
        """Train for ``cfg.steps``; returns (model, losses per step, seconds, target tokens)."""
        model = self.model(cfg, vocab, attention, ctx.device, ctx.dtype, seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        g = torch.Generator().manual_seed(seed)
        losses, tokens = [], 0
        ctx.sync()
        t0 = time.perf_counter()
        for _ in range(cfg.steps):
            idx = torch.randint(0, train.src.shape[0], (cfg.batch_size,), generator=g)
            losses.append(self.train_step(model, opt, self.batch(train, idx, ctx.device)))
            tokens += int(train.tgt_len[idx].sum())
        ctx.sync()
        seconds = time.perf_counter() - t0
        return model, torch.stack(losses).float().cpu().tolist(), seconds, tokens

    @torch.no_grad()
    def translate(self, model: Seq2Seq, vocab: Vocab, enc: Encoded, device) -> list[str]:
        """Greedy translations of every source of ``enc``."""
        model.eval()
        src, src_len = enc.src.to(device), enc.src_len.to(device)
        step, state, _ = model.decoding_fns(src, src_len)
        out = greedy(
            step,
            state,
            batch_size=src.shape[0],
            bos=vocab.bos,
            eos=vocab.eos,
            max_len=enc.tgt_in.shape[1] + 2,
            device=device,
        )
        model.train()
        return [vocab.decode(s) for s in out.sequences()]

    def score(self, hyps: list[str], refs: list[str]) -> tuple[float, float]:
        """(exact-match share, position-wise token accuracy over the references' tokens)."""
        exact = sum(h == r for h, r in zip(hyps, refs)) / len(refs)
        hit = total = 0
        for h, r in zip(hyps, refs):
            hw, rw = h.split(), r.split()
            hit += sum(a == b for a, b in zip(hw, rw))
            total += len(rw)
        return exact, hit / total

    # -- check ---------------------------------------------------------------------------
    def check_loss_masking(self, ctx) -> None:
        g = torch.Generator().manual_seed(ctx.rng_seed)
        B, T, V = 5, 7, 11
        logits = torch.randn(B, T, V, generator=g, dtype=ctx.dtype).to(ctx.device).requires_grad_(True)
        targets = torch.randint(0, V, (B, T), generator=g).to(ctx.device)
        lengths = torch.tensor([7, 3, 1, 5, 6], device=ctx.device)
        pad = torch.arange(T, device=ctx.device)[None, :] >= lengths[:, None]  # (B, T)
        loss = self.loss_fn(logits, targets, lengths)
        noisy_logits = torch.where(
            pad[..., None], 100 * torch.randn(B, T, V, generator=g, dtype=ctx.dtype).to(ctx.device), logits.detach()
        )
        noisy_targets = torch.where(pad, torch.randint(-5, 3 * V, (B, T), generator=g).to(ctx.device), targets)
        ctx.assert_close(
            self.loss_fn(noisy_logits, noisy_targets, lengths),
            loss.detach(),
            rtol=0,
            atol=0,
            name="loss unchanged by padded logits and targets",
        )
        want = (
            sum(
                F.cross_entropy(logits[b, :n].double(), targets[b, :n], reduction="sum")
                for b, n in enumerate(lengths.tolist())
            )
            / lengths.sum()
        )
        ctx.assert_close(
            loss.double(),
            want.detach(),
            name="loss = mean NLL over real tokens",
            rtol=1e-6 if ctx.dtype == torch.float32 else 1e-12,
            atol=0,
        )
        (grad,) = torch.autograd.grad(loss, logits)
        ctx.expect(
            bool((grad[pad] == 0).all()), "padded positions receive a nonzero gradient", name="no gradient into padding"
        )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        self.check_loss_masking(ctx)
        vocab, train, test, _ = self.data(cfg, ctx.rng_seed)
        model, losses, seconds, tokens = self.train(ctx, cfg, vocab, train, cfg.attention, ctx.rng_seed)
        ctx.metric("check_train_tokens_per_s", tokens / seconds)
        first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
        ctx.expect(
            last < 0.25 * first,
            f"training loss fell from {first:.3f} only to {last:.3f} (needs < 1/4) in {cfg.steps} steps",
            name="training loss falls",
        )
        hyps = self.translate(model, vocab, test, ctx.device)
        exact, tok_acc = self.score(hyps, [toy_translate(s) for s in test.pairs.sources])
        ctx.metric("check_exact_match", exact)
        ctx.metric("check_token_accuracy", tok_acc)
        ctx.expect(
            exact >= cfg.min_exact,
            f"{exact:.1%} of held-out sentences translated exactly, below the {cfg.min_exact:.0%} threshold",
            name=f"exact match >= {cfg.min_exact}",
        )

    # -- bench ---------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: TranslationConfig) -> Prepared:
        vocab, train, _, _ = self.data(config, ctx.rng_seed, real=True)
        model = self.model(config, vocab, config.attention, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        idx = torch.arange(config.batch_size)
        batch = self.batch(train, idx, ctx.device)
        return Prepared(
            fn=lambda: self.train_step(model, opt, batch), items=int(train.tgt_len[idx].sum()), item_unit="tokens"
        )

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        vocab, train, test, desc = self.data(cfg, ctx.rng_seed, real=True)
        ctx.note(f"data: {desc}; {train.src.shape[0]} train / {test.src.shape[0]} held-out pairs")
        model, losses, seconds, tokens = self.train(ctx, cfg, vocab, train, cfg.attention, ctx.rng_seed)
        ctx.curve(
            "train loss", list(range(1, len(losses) + 1)), losses, y_label="masked cross-entropy", series=cfg.attention
        )
        ctx.metric("train_tokens_per_s", tokens / seconds)
        ctx.metric("train_time_s", seconds)
        ctx.metric("final_loss", sum(losses[-10:]) / 10)
        synthetic = test.pairs.synthetic
        refs = [toy_translate(s) for s in test.pairs.sources] if synthetic else test.pairs.targets
        hyps = self.translate(model, vocab, test, ctx.device)
        exact, tok_acc = self.score(hyps, refs)
        ctx.metric("exact_match", exact)
        ctx.metric("token_accuracy", tok_acc)
        ctx.table(
            "sample translations",
            [{"source": s, "reference": r, "greedy": h} for s, r, h in list(zip(test.pairs.sources, refs, hyps))[:5]],
        )
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        sub = Encoded(
            *(x[:64] for x in (test.src, test.src_len, test.tgt_in, test.tgt_out, test.tgt_len)), pairs=test.pairs
        )
        n_tok = int(sub.tgt_len.sum())
        ctx.measure(
            "greedy_decode",
            Prepared(fn=lambda: self.translate(model, vocab, sub, ctx.device), items=n_tok, item_unit="tokens"),
            config=cfg,
        )
