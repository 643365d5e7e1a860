"""10.02 BERT-like model for MLM: BERT-base's published size, BERT's masking, the MLM loss falls.

Checked: ``models.bert.BertMLM`` (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional
Transformers for Language Understanding"): token + token-type + position embeddings, 12 blocks of
768 with 12 heads and MLP 3072, the pooler, and an MLM head tied to the token embedding. Built on
the meta device, BERT-base (30,522 WordPiece tokens) has exactly 109,482,240 parameters with the
pooler (the paper's "110M"; Hugging Face's ``BertModel``) and BERT-large 335,141,888 ("340M").
The masking rule of 6.09 (``kernels.text.mlm.mlm_mask``) selects 15 % of 400k tokens and splits
them 80 % ``<mask>``, 10 % a random ordinary token, 10 % kept (each share within 1 point). A small
BERT's masked-token loss on the stdlib-docstring corpus falls >= 10 % (tiny), in WordPiece tokens
(``harness.data.wordpiece``: a vocabulary trained offline by Hugging Face ``tokenizers``, or a
BERT ``vocab.txt`` under ``--data-dir``/``wordpiece/``). The bench times a training step at
sequence length 128 (tokens/s) and sets the loss beside the published figures.

Lesson: "110M" is BertModel with the pooler and without the MLM head's transform; the token
embedding alone is 23.4M of it (21 %), a quarter of the model that a smaller vocabulary would
shrink. Anchors: BERT-base reaches MNLI-m 84.6 and SQuAD v1.1 F1 88.5 after 1M steps of batch 256
x 512 tokens on BooksCorpus + English Wikipedia (3.3B words, 4 days on 16 Cloud TPUs); ours is
seconds on a CPU on 730 kB of docstrings, so only the pieces, not the numbers, carry over.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.corpus import random_windows
from harness.data.wordpiece import FIRST_ORDINARY, wordpiece_corpus
from harness.mutants import Mutant
from harness.published import published_vs_ours
from harness.train import standard_step
from kernels.text.mlm import mlm_loss, mlm_mask
from kernels.text.wrong import NoPooler, ninety_five_five
from models.bert import BERT_BASE, BERT_BASE_PARAMS, BERT_LARGE, BERT_LARGE_PARAMS, BERT_VOCAB, BertMLM
from models.transformer import TransformerConfig

_SMALL = TransformerConfig(d_model=64, n_heads=4, n_layers=2, d_ff=256, max_len=128)
ANCHORS = [
    ("BERT-base (Devlin et al. 2019, Table 1)", "MNLI-m 84.6, 110M parameters", "3.3B words, 1M steps, 16 TPUs"),
    ("BERT-base SQuAD v1.1 (Table 2)", "F1 88.5", "same pre-training, then fine-tuned"),
]


@dataclasses.dataclass(frozen=True)
class BertRun:
    """Model shape and training budget."""

    model: TransformerConfig
    """the encoder's shape"""
    vocab_size: int = 2000
    """WordPiece pieces (BERT's released vocabulary has 30,522), specials included"""
    seq_len: int = 32
    """T: tokens per window"""
    batch_size: int = 32
    """windows per step"""
    steps: int = 100
    """AdamW steps"""
    lr: float = 2e-3
    """AdamW learning rate"""


@task("research.bert_mlm", seed="10.02", title="BERT-like model for MLM")
class BertMlm(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": BertRun(_SMALL),
        "cpu": BertRun(_SMALL, seq_len=128, batch_size=16, steps=150, lr=3e-3),
        "gpu": BertRun(BERT_BASE, vocab_size=8000, seq_len=128, batch_size=64, steps=3000, lr=5e-4),
    }
    metrics = {
        "param_count_mismatch": "|ours - published| over BERT-base and BERT-large, parameters",
        "loss_drop_pct": "masked-token loss drop from the first 10 steps to the last 10, percent",
    }
    claims = (
        metric("param_count_mismatch", "<=", 0, text="BERT-base 109,482,240 and BERT-large 335,141,888 exactly"),
        metric("loss_drop_pct", ">=", 10.0, text="the masked-token loss falls >= 10 % within the budget"),
    )
    model_cls = BertMLM
    mask_fn = staticmethod(mlm_mask)
    mutants = (
        Mutant("pooler_left_out", "the count leaves out the pooler", {"model_cls": NoPooler}, match="BERT-base"),
        Mutant(
            "ninety_five_five",
            "90/5/5 where BERT uses 80/10/10",
            {"mask_fn": staticmethod(ninety_five_five)},
            match="80/10/10",
        ),
    )

    def _counts(self):
        with torch.device("meta"):  # shapes only: BERT-large's 335M parameters take no memory
            models = [self.model_cls(c, BERT_VOCAB) for c in (BERT_BASE, BERT_LARGE)]
        base, large = (sum(p.numel() for p in m.body_parameters()) for m in models)
        return {"BERT-base": (base, BERT_BASE_PARAMS), "BERT-large": (large, BERT_LARGE_PARAMS)}

    def check(self, ctx):
        for name, (ours, want) in self._counts().items():
            ctx.expect(ours == want, f"{name} has {ours:,} parameters, published {want:,}", name=f"{name} count")
        ids = torch.randint(3, 1000, (400, 1000), generator=ctx.generator())
        inp, lab = self.mask_fn(ids, mask_id=2, first_ordinary=3, vocab_size=1000, generator=ctx.generator(1))
        sel = lab != -100  # the selected tokens; a random draw may hit the same id: ~0.1 % of them look kept
        masked, kept = (inp[sel] == 2).double().mean().item(), (inp[sel] == ids[sel]).double().mean().item()
        shares = (sel.double().mean().item(), masked, 1 - masked - kept, kept)
        ok = all(abs(a - b) < 0.01 for a, b in zip(shares, (0.15, 0.8, 0.1, 0.1)))
        got = "/".join(f"{x:.3f}" for x in shares)
        ctx.expect(ok, f"selected/mask/random/kept {got}: not 15 % and 80/10/10", name="masking 15 % then 80/10/10")
        drop = self._train(ctx, ctx.configs[0])
        # WordPiece pieces are more predictable from their unigram counts than whole words, which the
        # first 10 steps already learn: what falls after them is less than with whole words
        ctx.expect(drop >= 10.0, f"masked-token loss fell {drop:.1f} %, needs 10 %", name="MLM loss falls")

    def _train(self, ctx, run):
        tok, train_ids, _, self.data_desc = wordpiece_corpus(run.vocab_size)  # [PAD] 0 .. [MASK] 4
        V, g, mask = tok.vocab_size, ctx.generator(3), tok.id("[MASK]")
        torch.manual_seed(ctx.rng_seed)
        model = self.model_cls(run.model, V).to(ctx.device, ctx.dtype)
        opt = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=0.01)
        losses = []
        for _ in range(run.steps):
            x = random_windows(train_ids, run.batch_size, run.seq_len - 1, g)  # (B, T)
            inp, lab = self.mask_fn(x, mask_id=mask, first_ordinary=FIRST_ORDINARY, vocab_size=V, generator=g)
            losses.append(standard_step(model, opt, inp.to(ctx.device), lab.to(ctx.device), mlm_loss).item())
        ctx.curve("masked-token loss", list(range(1, len(losses) + 1)), losses, y_label="loss (nats)")
        k = min(10, len(losses) // 4)
        return 100 * (1 - sum(losses[-k:]) / sum(losses[:k]))

    def prepare(self, ctx, impl, config):
        V = config.vocab_size
        torch.manual_seed(ctx.rng_seed)
        model = self.model_cls(config.model, V).to(ctx.device, ctx.dtype)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
        x = torch.randint(FIRST_ORDINARY, V, (config.batch_size, config.seq_len), generator=ctx.generator())  # (B, T)
        inp, lab = mlm_mask(x, mask_id=4, first_ordinary=FIRST_ORDINARY, vocab_size=V, generator=ctx.generator(1))
        inp, lab = inp.to(ctx.device), lab.to(ctx.device)
        return Prepared(fn=lambda: standard_step(model, opt, inp, lab, mlm_loss), items=x.numel(), item_unit="tokens")

    def bench(self, ctx):
        run = ctx.configs[0]
        counts = self._counts()
        ctx.metric("param_count_mismatch", sum(abs(a - b) for a, b in counts.values()))
        ctx.table("parameter counts", [{"model": k, "ours": a, "published": b} for k, (a, b) in counts.items()])
        drop = self._train(ctx, run)
        ctx.metric("loss_drop_pct", drop)
        shape = f"{run.model.n_layers}L x {run.model.d_model}, T={run.seq_len}, {run.steps} x {run.batch_size}"
        setup = f"{self.data_desc[:60]}, WordPiece {run.vocab_size:,}; {shape}"
        published_vs_ours(ctx, ANCHORS, f"masked-token loss -{drop:.0f} % in {run.steps} steps", setup)
        super().bench(ctx)
