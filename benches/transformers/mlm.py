"""6.09 Masked language modelling (BERT-style).

Checked: BERT's masking rule (Devlin et al. 2019, section 3.1, appendix A.1) and MLM loss
(``kernels.text.mlm``), then a small ``models.transformer.MaskedLM`` trained with them.

The rule: each non-padding token is *selected* independently with probability 0.15 (as Hugging
Face's ``DataCollatorForLanguageModeling`` draws it); a selected token is replaced by
``<mask>`` with probability 0.8, by a uniformly random ordinary token with probability 0.1, and
left as it is with probability 0.1. The loss is the cross-entropy of the original token at the
selected positions only (labels -100 elsewhere, ``ignore_index``).

Data: word windows (1,000-word vocabulary from the training part) of ``harness.data.corpus``
(the stdlib's docstrings, or ``corpus/*.txt`` under ``$DRILLS_DATA_DIR``); last 10% held out.

Check (tiny). Statistics on one seeded draw over 400 x 128 tokens (about 46,000 selectable
after 10% padding), each with its false-failure rate for a random seed:

* selection: z = (k - 0.15 n) / sqrt(0.15 * 0.85 * n); fails if ``|z| > 5`` (5.7e-7);
* 80/10/10: counts that became ``<mask>``, another token, or stayed, against 0.8, 0.1 (1 - q_i),
  0.1 + 0.1 q_i summed over the selected tokens (q_i: the chance that the random replacement
  equals the original); Pearson X^2, 2 degrees of freedom; fails if X^2 > 30 (3.1e-7);
* random replacements uniform over the ordinary tokens: X^2 over 10 id ranges, 9 degrees of
  freedom; fails if X^2 > 50 (1.1e-7);
* exact properties: padding never selected; unselected positions keep their token and get
  label -100; selected ones are labelled with the original; no ``<pad>``/``<unk>``/``<mask>``
  as a random replacement.

The loss equals the cross-entropy over the selected positions computed directly, ignores noise
on the logits of every unselected position, and changes with one selected position's logits.

Training: the held-out masked-token loss falls below the training words' unigram entropy.
Bench: training tokens/s, loss curve, the trained model's attention map on a held-out window.

Lesson: the three tests together fail a correct implementation with probability < 1e-6, yet
catch a 20 % selection at z = 29. Predicting only 15 % of the tokens gives a sparse training
signal, which is why BERT trained for 1M steps (Devlin et al. 2019) and ELECTRA (Clark et al.
2020) replaced masking with a task over every token.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.corpus import random_windows, word_corpus
from harness.mutants import Mutant
from harness.train import fit, standard_step
from kernels.layers.attention_maps import record_attention
from kernels.text.mlm import IGNORE, MASK, mlm_loss, mlm_mask
from kernels.text.mlm_wrong import loss_over_all_positions, wrong_mask
from models.transformer import MaskedLM, preset


@dataclasses.dataclass(frozen=True)
class MlmConfig:
    """Model and training budget."""

    model: str = "tiny"
    """models.transformer preset"""
    vocab_words: int = 1000
    """most frequent training words kept (the rest are <unk>: 12% of the words at 1,000)"""
    seq_len: int = 32
    """words per window"""
    batch_size: int = 32
    """windows per step"""
    steps: int = 200
    """optimizer steps (AdamW)"""
    lr: float = 3e-3
    """AdamW learning rate"""

    def label(self) -> str:
        return f"{self.model},V={self.vocab_words},T={self.seq_len},bs={self.batch_size},steps={self.steps}"


def _wrong(name: str, what: str, match: str, **fns) -> Mutant:  # the statistics fail first: no training
    patch = {attr: staticmethod(fn) for attr, fn in fns.items()}
    return Mutant(name, what, {"_train": lambda self, *a: (0.0, 1.0), **patch}, match=match)


@task("transformers.mlm", seed="6.09", title="masked language modelling (BERT-style)")
class MaskedLanguageModelling(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": MlmConfig(),
        "cpu": MlmConfig(seq_len=64, steps=300),
        "gpu": MlmConfig(model="base", vocab_words=8000, seq_len=256, batch_size=64, steps=3000, lr=5e-4),
    }
    metrics = {"context_gain_nats": "unigram entropy minus the held-out masked-token loss, nats"}
    claims = (metric("context_gain_nats", ">=", 0.2, text="masked-token loss >= 0.2 nats below the unigram entropy"),)
    #: the functions under test
    mask_fn = staticmethod(mlm_mask)
    loss_fn = staticmethod(mlm_loss)
    mutants = (
        _wrong("ninety_five_five", "a 90/5/5 rule", "80/10/10", mask_fn=wrong_mask(split=(0.9, 0.95))),
        _wrong("select_20_percent", "selects 20 %", "against p = 0.15", mask_fn=wrong_mask(p_select=0.2)),
        _wrong(
            "random_from_all_ids",
            "random tokens from the whole vocabulary, specials included",
            "ordinary tokens",
            mask_fn=wrong_mask(low=0),
        ),
        _wrong(
            "random_from_half",
            "random tokens from the lower half only",
            "uniform",
            mask_fn=wrong_mask(high=lambda v: v // 2),
        ),
        _wrong("selects_padding", "padding can be selected", "padding", mask_fn=wrong_mask(pad_ok=True)),
        _wrong(
            "loss_over_all_positions",
            "the loss covers unselected positions",
            "mlm loss",
            loss_fn=loss_over_all_positions,
        ),
    )

    def _windows(self, ids, n, T, g):
        return random_windows(ids, n, T - 1, g)  # (n, T)

    def _data(self, ctx, config):
        tok, train_ids, test_ids, desc = word_corpus(config.vocab_words, (MASK,))  # 0 <pad>, 1 <unk>, 2 <mask>
        ctx.note(f"data: {desc}; {len(train_ids)} training words, vocabulary {tok.vocab_size}")
        return tok, train_ids, test_ids

    def check(self, ctx):
        config = ctx.configs[0]
        tok, train_ids, test_ids = self._data(ctx, config)
        mask_id, first, V = tok.stoi[MASK], 3, tok.vocab_size
        self._check_rule(ctx, train_ids, mask_id, first, V)
        self._check_loss(ctx, train_ids, mask_id, first, V)
        held_out, unigram = self._train(ctx, config, tok, train_ids, test_ids)
        msg = f"held-out masked-token loss {held_out:.3f} is not below the unigram entropy {unigram:.3f}"
        ctx.expect(held_out < unigram, msg, name="learns: masked loss below unigram entropy")

    def _check_rule(self, ctx, ids, mask_id, first, V):
        g = ctx.generator(1)
        x = self._windows(ids, 400, 128, g)  # (400, 128)
        x[torch.rand(x.shape, generator=g) < 0.1] = 0  # padding sprinkled in: never selectable
        inputs, labels = self.mask_fn(x, mask_id=mask_id, first_ordinary=first, vocab_size=V, generator=g)
        sel = labels != IGNORE
        ctx.expect(not bool(sel[x == 0].any()), "padding positions were selected", name="mlm: padding never selected")
        ok = torch.equal(inputs[~sel], x[~sel]) and bool((labels[sel] == x[sel]).all())
        msg = "unselected tokens must stay as they are, and selected ones be labelled with the original"
        ctx.expect(ok, msg, name="mlm: unselected kept, selected labelled")
        n, k = int((x != 0).sum()), int(sel.sum())
        z = (k - 0.15 * n) / (0.15 * 0.85 * n) ** 0.5
        ctx.metric("selected_fraction", k / n)
        msg = f"selected {k} of {n} tokens ({k / n:.4f}), z = {z:.1f} against p = 0.15"
        ctx.expect(abs(z) <= 5, msg, name="mlm: 15% selected (|z| <= 5)")
        orig, new = x[sel], inputs[sel]
        is_mask, changed = new == mask_id, (new != mask_id) & (new != orig)
        kept = new == orig
        q = torch.where(orig >= first, 1.0 / (V - first), 0.0).double()  # P(random draw == original)
        expected = torch.stack([torch.full_like(q, 0.8), 0.1 * (1 - q), 0.1 + 0.1 * q]).sum(1)
        observed = torch.tensor([int(is_mask.sum()), int(changed.sum()), int(kept.sum())], dtype=torch.float64)
        x2 = float(((observed - expected) ** 2 / expected).sum())
        for name, o in zip(("mask", "random", "kept"), observed.tolist()):
            ctx.metric(f"{name}_fraction_of_selected", o / k)
        msg = f"80/10/10 rule: observed (mask, random, kept) = {observed.tolist()}, expected {expected.tolist()}"
        ctx.expect(x2 <= 30, f"{msg}, X^2 = {x2:.1f} > 30", name="mlm: 80/10/10 (X^2 <= 30)")
        rand = new[changed]
        msg = "random replacements must be ordinary tokens (not pad/unk/mask)"
        ctx.expect(bool((rand >= first).all()), msg, name="mlm: random replacements are ordinary tokens")
        tenth = lambda j: j * 10 // (V - first)  # noqa: E731 - id offset -> which tenth of the ordinary range
        counts = torch.bincount(tenth(rand - first), minlength=10).double()
        width = torch.bincount(tenth(torch.arange(V - first)), minlength=10).double()  # ids per tenth
        exp_bins = len(rand) * width / width.sum()
        x2u = float(((counts - exp_bins) ** 2 / exp_bins).sum())
        msg = f"random replacements not uniform over ordinary ids: per tenth {counts.tolist()}, X^2 = {x2u:.1f} > 50"
        ctx.expect(x2u <= 50, msg, name="mlm: random replacements uniform (X^2 <= 50)")

    def _check_loss(self, ctx, ids, mask_id, first, V):
        g = ctx.generator(2)
        x = self._windows(ids, 8, 32, g)
        _, labels = self.mask_fn(x, mask_id=mask_id, first_ordinary=first, vocab_size=V, generator=g)
        sel = labels != IGNORE
        logits = torch.randn(8, 32, V, generator=g, dtype=ctx.dtype)
        loss = self.loss_fn(logits, labels)
        want = F.cross_entropy(logits[sel], x[sel])
        ctx.assert_close(loss, want, name="mlm loss = cross-entropy over selected positions")
        noisy = logits.clone()
        noisy[~sel] += 50 * torch.randn(int((~sel).sum()), V, generator=g, dtype=ctx.dtype)
        ctx.assert_close(self.loss_fn(noisy, labels), loss, name="mlm loss ignores logits at unselected positions")
        poked = logits.clone()
        b, t = sel.nonzero()[0].tolist()
        poked[b, t, x[b, t]] += 5.0
        msg = "changing a selected position's logits left the loss unchanged"
        ctx.expect(not torch.allclose(self.loss_fn(poked, labels), loss), msg, name="mlm loss sees selected positions")

    def _train(self, ctx, config, tok, train_ids, test_ids):
        mask_id, V = tok.stoi[MASK], tok.vocab_size
        g = ctx.generator(3)
        x = self._windows(train_ids, config.steps * config.batch_size, config.seq_len, g)
        inputs, labels = self.mask_fn(x, mask_id=mask_id, first_ordinary=3, vocab_size=V, generator=g)
        torch.manual_seed(ctx.rng_seed)
        model = MaskedLM(preset(config.model, max_len=config.seq_len), V).to(ctx.device, ctx.dtype)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
        data = (inputs.to(ctx.device), labels.to(ctx.device))
        log = fit(model, opt, data, batch_size=config.batch_size, loss_fn=self.loss_fn, seed=ctx.rng_seed)
        log.record(ctx)
        ctx.metric("train_tokens_per_s", log.samples_per_s * config.seq_len)
        xt = self._windows(test_ids, 128, config.seq_len, g)
        ti, tl = self.mask_fn(xt, mask_id=mask_id, first_ordinary=3, vocab_size=V, generator=g)
        model.eval()
        with torch.no_grad():
            held_out = float(self.loss_fn(model(ti.to(ctx.device)), tl.to(ctx.device)))
        counts = torch.bincount(train_ids, minlength=V).double()
        p = counts[counts > 0] / counts.sum()
        unigram = float(-(p * p.log()).sum())
        ctx.metric("held_out_masked_loss_nats", held_out)
        ctx.metric("unigram_entropy_nats", unigram)
        ctx.metric("context_gain_nats", unigram - held_out)
        self._trained = (model, tok, xt[:1], ti[:1])
        return held_out, unigram

    def prepare(self, ctx, impl, config):
        V = config.vocab_words + 3
        torch.manual_seed(ctx.rng_seed)
        model = MaskedLM(preset(config.model, max_len=config.seq_len), V).to(ctx.device, ctx.dtype)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
        g = ctx.generator(4)
        x = torch.randint(3, V, (config.batch_size, config.seq_len), generator=g)
        masked = self.mask_fn(x, mask_id=2, first_ordinary=3, vocab_size=V, generator=g)
        inputs, labels = (t.to(ctx.device) for t in masked)
        step = lambda: standard_step(model, opt, inputs, labels, self.loss_fn)
        return Prepared(fn=step, items=config.batch_size * config.seq_len, item_unit="tokens")

    def bench(self, ctx):
        config = ctx.configs[0]
        tok, train_ids, test_ids = self._data(ctx, config)
        self._train(ctx, config, tok, train_ids, test_ids)
        ctx.measure("train_step", self.prepare(ctx, "train_step", config), config=config)
        model, tok, orig, masked = self._trained
        words = [tok.itos[int(i)] for i in masked[0]]
        with torch.no_grad(), record_attention(model) as maps:
            model(masked.to(ctx.device))
        ctx.heatmap(
            "attention map (last layer, mean over heads)",
            maps[-1][0].mean(0),
            x=words,
            y=words,
            x_label="key word",
            y_label="query word",
            caption=f"trained MLM on a held-out window; the original: {tok.decode(orig[0])!r}",
        )
