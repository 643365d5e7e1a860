"""10.05 Reproduce GPT-2 (124M): the parameter count, the FLOPs per token, MFU, llm.c shards.

Checked: GPT-2 small (Radford et al. 2019) as ``models.gpt2.GPT2_124M`` on ``models.transformer.GPT``
(pre-LN blocks, learned positions, token embedding tied to the output head: untied it would have
163,037,184 parameters); PaLM's FLOPs per token 6N + 12 L H Q T (Chowdhery et al. 2022, appendix B;
nanoGPT's ``estimate_mfu``); llm.c ``.bin`` token shards (``harness.data.shards``); a byte-level GPT
on the stdlib-docstring corpus (tiktoken's BPE downloads its merges, so bytes are the offline
default; llm.c GPT-2 shards under ``--data-dir`` replace them). Timed: tokens/s and model FLOP/s of
an AdamW step, the run's MFU against the measured matmul peak; the ``gpu`` preset trains the 124M
shape (T = 1,024) in bf16 autocast under ``torch.compile`` (SDPA: the flash kernel on CUDA).

Lesson: count and FLOPs first, they are exact. A reported "124M" and nanoGPT's "123.65M" are the
same model: the difference is the position table. MFU compares against the machine's own
measured peak, so it says how much of the hardware the model uses, independent of its speed.
Anchors: nanoGPT's shakespeare-char baby GPT reaches val loss 1.4697 in ~3 min on an A100;
GPT-2 124M on OpenWebText ~2.85 val loss (nanoGPT README); llm.c trains 124M in ~90 min on
8 x A100 at about 60 % MFU (llm.c discussion #481). None of these can run here: our corpus is
730 kB of docstrings, our tokens are bytes, and our budget is seconds on a CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import torch

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.corpus import load_corpus, unigram_nll
from harness.data.lm_tokens import lm_tokens
from harness.data.shards import HEADER_INTS, read_shard, write_shard
from harness.mutants import Mutant
from harness.published import published_vs_ours, record_mfu
from harness.train_text import lm_step
from kernels.text.lm_train import train_lm
from kernels.text.wrong import untied_gpt
from models.gpt2 import GPT2_124M, GPT2_124M_PARAMS, GPT2_VOCAB, NANOGPT_PRINTED_PARAMS, flops_per_token
from models.transformer import GPT, TransformerConfig

ANCHORS = [
    ("nanoGPT shakespeare-char (README)", "val loss 1.4697", "1 MB of characters, 10.7M-param GPT, ~3 min on A100"),
    ("nanoGPT GPT-2 124M on OpenWebText", "val loss ~2.85", "9B BPE tokens, 8 x A100, ~4 days"),
    ("llm.c GPT-2 124M (discussion #481)", "~90 min, ~60 % MFU", "10B FineWeb tokens, 8 x A100"),
]


@dataclasses.dataclass(frozen=True)
class GPTRun:
    """Model shape and training budget (byte-level tokens, vocabulary 256)."""

    model: TransformerConfig
    """the GPT's shape (max_len >= seq_len)"""
    seq_len: int = 64
    """T: tokens per training window"""
    batch_size: int = 16
    """B: windows per step"""
    steps: int = 80
    """AdamW steps"""
    lr: float = 3e-3
    """AdamW learning rate (weight decay 0.1, betas 0.9, 0.95 as nanoGPT)"""
    bf16: bool = False
    """train under bf16 autocast (CUDA)"""
    compile: bool = False
    """wrap the model in ``torch.compile`` (Inductor; attention stays SDPA: flash for bf16 on CUDA)"""


@task("research.gpt2_repro", seed="10.05", title="reproduce GPT-2")
class GPT2Repro(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": GPTRun(TransformerConfig(d_model=64, n_heads=4, n_layers=2, d_ff=256, max_len=64)),
        "cpu": GPTRun(TransformerConfig(d_model=64, n_heads=4, n_layers=2, d_ff=256, max_len=128), seq_len=128,
                      steps=150),
        "gpu": GPTRun(GPT2_124M, seq_len=1024, batch_size=16, steps=2000, lr=6e-4, bf16=True, compile=True),
    }  # fmt: skip
    time_limit_s = {"check": 120.0, "bench": 3600.0}
    metrics = {
        "param_count_mismatch": "|ours - 124,439,808| for the 124M config, parameters",
        "val_loss_nats": "held-out next-byte loss after training, nats",
        "unigram_gap_nats": "byte unigram NLL minus the held-out loss, nats (> 0: uses context)",
        "mfu_pct": "model FLOP/s of the training run over the measured matmul peak, percent",
        "tokens_per_s": "training tokens per second over the run",
    }
    claims = (
        metric("param_count_mismatch", "<=", 0, text="the 124M config has exactly 124,439,808 parameters"),
        metric("unigram_gap_nats", ">=", 0.25, text="held-out loss >= 0.25 nats below the byte unigram NLL"),
        metric("mfu_pct", ">=", 5.0, text="training reaches >= 5 % MFU of the measured matmul peak"),
    )
    build = staticmethod(GPT)
    flops_fn = staticmethod(flops_per_token)
    shard_model = "gpt-2"
    mutants = (
        Mutant("untied_head", "lm_head gets its own 50,257 x 768 matrix", {"build": staticmethod(untied_gpt)},
               match="124M"),
        Mutant("flops_6n_only", "FLOPs per token 6N: attention's 12 L H Q T left out",
               {"flops_fn": staticmethod(lambda n, L, H, Q, T: 6 * n)}, match="FLOPs"),
        Mutant("llama_shard", "tokens written as llm.c Llama-3 shards (magic 20240801, uint32)",
               {"shard_model": "llama-3"}, match="shard"),
    )  # fmt: skip

    def _count(self):
        with torch.device("meta"):  # no memory: 124M float32 would take 498 MB
            m = self.build(GPT2_124M, GPT2_VOCAB)
        n = sum(p.numel() for p in m.parameters())  # parameters() yields a tied tensor once
        return n, n - m.decoder.pos.weight.numel(), m

    def check(self, ctx):
        n, no_pos, m = self._count()
        ctx.expect(n == GPT2_124M_PARAMS, f"124M config has {n:,} parameters, GPT-2 has {GPT2_124M_PARAMS:,}",
                   name="GPT-2 124M parameter count")  # fmt: skip
        ctx.expect(m.lm_head.weight is m.decoder.tok.weight, "lm_head is not the token embedding", name="tied head")
        ctx.expect(no_pos == NANOGPT_PRINTED_PARAMS, f"without positions {no_pos:,}, nanoGPT prints 123.65M",
                   name="nanoGPT's count (no position embeddings)")  # fmt: skip
        f = self.flops_fn(NANOGPT_PRINTED_PARAMS, 12, 12, 64, 1024)
        ctx.expect(f == 855_166_464, f"FLOPs per token {f:,}, not 6N + 12LHQT = 855,166,464",
                   name="FLOPs per token, worked example")  # fmt: skip
        text, _ = load_corpus(real=False)
        data = torch.tensor(list(text[:20_000].encode()), dtype=torch.int64)
        path = write_shard(ctx.workdir / "corpus_000.bin", data, model=self.shard_model)
        head = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
        ctx.expect((int(head[0]), int(head[1]), int(head[2])) == (20240520, 1, len(data)),
                   f"shard header (magic, version, count) = {tuple(int(h) for h in head[:3])}, llm.c GPT-2 wants "
                   f"(20240520, 1, {len(data)})", name="llm.c shard header")  # fmt: skip
        back = torch.from_numpy(np.asarray(read_shard(path), dtype=np.int64))
        ctx.assert_close(back, data, name="llm.c shard tokens read back")
        first, val, _ = self._train(ctx, ctx.configs[0])
        ctx.expect(val < 0.7 * first, f"held-out loss {val:.3f} vs first batch {first:.3f}: needs a 30 % drop",
                   name="loss falls")  # fmt: skip

    def _model(self, ctx, run, vocab):
        torch.manual_seed(ctx.rng_seed)
        model = self.build(run.model, vocab).to(ctx.device, ctx.dtype)
        return model, (torch.compile(model) if run.compile else model)

    def _train(self, ctx, run, real=False):
        self.train_ids, self.held_ids, self.data_desc, self.vocab = lm_tokens(real)
        model, fwd = self._model(ctx, run, self.vocab)
        opt = torch.optim.AdamW(model.parameters(), lr=run.lr, betas=(0.9, 0.95), weight_decay=0.1)
        bf16 = run.bf16 and ctx.is_cuda
        autocast = (lambda: torch.autocast("cuda", torch.bfloat16)) if bf16 else contextlib.nullcontext
        losses, val, self.train_s = train_lm(fwd, opt, self.train_ids, self.held_ids, steps=run.steps,
                                             batch_size=run.batch_size, seq_len=run.seq_len, seed=ctx.rng_seed,
                                             device=ctx.device, autocast=autocast)  # fmt: skip
        ctx.curve("train loss", list(range(1, len(losses) + 1)), losses, y_label="loss (nats)")
        return losses[0], val, model

    def _fpt(self, model, run):
        c = run.model
        n = sum(p.numel() for p in model.parameters()) - model.decoder.pos.weight.numel()
        return self.flops_fn(n, c.n_layers, c.n_heads, c.d_model // c.n_heads, run.seq_len)

    def prepare(self, ctx, impl, config):
        model, fwd = self._model(ctx, config, 256)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.1)
        w = torch.randint(0, 256, (config.batch_size, config.seq_len + 1), generator=ctx.generator()).to(ctx.device)
        tokens = config.batch_size * config.seq_len
        return Prepared(fn=lambda: lm_step(fwd, opt, w), flops=self._fpt(model, config) * tokens, items=tokens,
                        item_unit="tokens")  # fmt: skip

    def bench(self, ctx):
        run = ctx.configs[0]
        n, _, _ = self._count()
        ctx.metric("param_count_mismatch", abs(n - GPT2_124M_PARAMS))
        _, val, model = self._train(ctx, run, real=True)
        uni = unigram_nll(self.train_ids, self.held_ids, self.vocab)
        tps = run.steps * run.batch_size * run.seq_len / self.train_s
        ctx.metric("val_loss_nats", val)
        ctx.metric("unigram_gap_nats", uni - val)
        ctx.metric("tokens_per_s", tps)
        dtype = torch.bfloat16 if run.bf16 and ctx.is_cuda else ctx.dtype  # what the matmuls ran in
        record_mfu(ctx, "mfu_pct", tps, self._fpt(model, run), dtype)
        unit, c = ("byte" if self.vocab == 256 else "token"), run.model
        ours = f"val loss {val:.3f} nats/{unit} (unigram {uni:.3f}), {tps:,.0f} tokens/s"
        data = f"bytes of {self.data_desc.split(';')[0]}" if self.vocab == 256 else f"GPT-2 tokens of {self.data_desc}"
        budget = f"{c.n_layers}L x {c.d_model}, T={run.seq_len}, {run.steps} steps x {run.batch_size}"
        published_vs_ours(ctx, ANCHORS, ours, f"{data}; {budget}")
        super().bench(ctx)
