"""6.06 Transformer decoder for text generation.

Compared: greedy generation from a GPT-style decoder (``models.transformer.GPT``: pre-LN
blocks, causal self-attention, tied embeddings) two ways: ``generate_no_cache`` runs the model over
the whole prefix for every new token; ``generate_kv_cache`` feeds only the new token and keeps the
keys and values of earlier positions in a per-layer cache (``models.transformer.KVCache``).

Data: characters of ``harness.data.corpus`` (the stdlib's docstrings, or ``corpus/*.txt``
under ``$DRILLS_DATA_DIR``); the first 90% trains, the last 10% is held out.

Check (tiny), for learned, sinusoidal and rotary positions, on freshly initialised models:

* causality: for cut points t = 0, T/2, T-2, replacing every token after t leaves the
  logits at positions 0..t equal (and changes some later logit: the probe can see a change);
* KV cache = no cache: 24 greedy tokens after a 9-token prompt (batch 2) are the same both
  ways, every step's logits are close, and equal one full forward over the final sequence;
* generating past ``max_len`` raises IndexError;
* 200 training steps bring the held-out loss below the training text's unigram entropy.

Bench (cpu: ``small`` preset, 100 steps of 8 x 128 characters): training tokens/s and loss,
tokens/s of 256 new tokens after a 32-token prompt with and without the cache (batch 1), a
generated sample (note) and the trained model's attention map on a held-out prompt.

Lesson: without a cache, token t costs a forward over t tokens, so generating N tokens costs
O(N^2) token-layers; with the cache each token costs one row per layer (Pope et al.,
"Efficiently Scaling Transformer Inference", 2022), and the gap widens with length and width.
An undertrained model's greedy sample falls into its most likely loop (greedy shows the mode).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric, speedup
from harness.data import CharTokenizer
from harness.data.corpus import load_corpus, random_windows
from harness.mutants import Mutant, replace_functions, tiny_changed
from harness.train import fit, standard_step
from kernels.layers.attention_maps import last_layer_map
from models import transformer_wrong as wrong
from models.transformer import GPT, POSITIONALS, KVCache, preset


@dataclasses.dataclass(frozen=True)
class GenConfig:
    """Model, training budget and generation length."""

    model: str = "tiny"
    """models.transformer preset"""
    positional: str = "learned"
    """positions of the trained model: sinusoidal, learned or rope"""
    seq_len: int = 64
    """characters per training window"""
    batch_size: int = 16
    """windows per optimizer step"""
    steps: int = 200
    """optimizer steps (AdamW)"""
    lr: float = 3e-3
    """AdamW learning rate"""
    prompt_len: int = 16
    """characters of held-out text the generation starts from"""
    new_tokens: int = 48
    """characters generated when timing (256 in the cpu/gpu presets)"""

    def label(self) -> str:
        return f"{self.model},{self.positional},T={self.seq_len},bs={self.batch_size},steps={self.steps}"


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: logits (B, T, V), targets (B, T) int64."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def windows(ids: torch.Tensor, n: int, T: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n random windows: inputs (n, T) and next-token targets (n, T)."""
    w = random_windows(ids, n, T, g)  # (n, T + 1)
    return w[:, :-1], w[:, 1:]


@task("transformers.decoder_generation", seed="6.06", title="Transformer decoder for text generation")
class DecoderGeneration(TrainingRun):
    __doc__ = __doc__
    #: one optimizer step; greedy generation of ``new_tokens`` after ``prompt_len`` with and without the cache
    variants = ("train_step", "generate_kv_cache", "generate_no_cache")
    sizes = {
        "tiny": GenConfig(),
        "cpu": GenConfig(model="small", seq_len=128, batch_size=8, steps=100, lr=2e-3, prompt_len=32, new_tokens=256),
        "gpu": GenConfig(model="gen", seq_len=256, batch_size=64, steps=3000, lr=1e-3, prompt_len=32, new_tokens=256),
    }
    metrics = {"context_gain_nats": "unigram entropy minus held-out loss, nats per character"}
    claims = (
        speedup(
            "generate_kv_cache",
            over="generate_no_cache",
            at_least=3.0,
            text="KV-cache decoding >= 3x the tokens/s of decoding without a cache at 256 new tokens",
        ),
        metric("context_gain_nats", ">=", 0.2, text="held-out loss >= 0.2 nats/char below the unigram entropy"),
    )
    #: what the checks exercise
    cache_cls = KVCache
    sdpa = staticmethod(F.scaled_dot_product_attention)
    mutants = (
        replace_functions(
            "causal_off_by_one", "the causal mask lets position t see t + 1", match="causal", sdpa=wrong.off_by_one_sdpa
        ),
        Mutant(
            "cache_drops_last_key",
            "the KV cache drops the newest key",
            {"cache_cls": wrong.DropsLastKey},
            match="KV cache",
        ),
        Mutant(
            "cache_at_offset_zero",
            "the KV cache writes every key at position 0",
            {"cache_cls": wrong.OverwritesAtZero},
            match="KV cache",
        ),
        Mutant("does_not_learn", "learning rate 0", tiny_changed(sizes, lr=0.0, steps=20), match="unigram"),
    )

    def _model(self, ctx, config, vocab, positional=None, max_len=None):
        torch.manual_seed(ctx.rng_seed)
        max_len = max_len or max(config.seq_len, config.prompt_len + config.new_tokens)
        cfg = preset(config.model, positional=positional or config.positional, max_len=max_len)
        return GPT(cfg, vocab, sdpa=self.sdpa).to(ctx.device, ctx.dtype)

    def check(self, ctx):
        config = ctx.configs[0]
        for positional in POSITIONALS:
            model = self._model(ctx, config, 40, positional, max_len=40).eval()
            self._check_causal(ctx, model, positional)
            self._check_cache(ctx, model, positional)
        past = lambda: model.generate(torch.zeros(1, 30, dtype=torch.long, device=ctx.device), 11)
        ctx.expect_raises(IndexError, past, match="max_len", name="generation past max_len refused")
        log, unigram, held_out = self._train(ctx, config)
        ctx.expect(
            held_out < unigram,
            f"held-out loss {held_out:.3f} nats/char after {config.steps} steps is not below "
            f"the unigram entropy {unigram:.3f} of the training text: the model does not use context",
            name="learns: held-out loss below unigram entropy",
        )

    @torch.no_grad()
    def _check_causal(self, ctx, model, positional):
        g = ctx.generator(1)
        T = 24
        x = torch.randint(0, 40, (3, T), generator=g).to(ctx.device)
        base = model(x)  # (3, T, V)
        for t in (0, T // 2, T - 2):
            y = x.clone()
            y[:, t + 1 :] = (x[:, t + 1 :] + torch.randint(1, 40, (3, T - t - 1), generator=g).to(ctx.device)) % 40
            out = model(y)
            where = f"{positional}, t={t}"
            ctx.assert_close(
                out[:, : t + 1], base[:, : t + 1], name="causal: logits up to t ignore later tokens", where=where
            )
            blind = f"{positional}: changing tokens after t={t} changed no later logit: the probe is blind"
            ctx.expect(
                not torch.allclose(out[:, t + 1 :], base[:, t + 1 :]), blind, name="causal probe sees later changes"
            )

    @torch.no_grad()
    def _check_cache(self, ctx, model, positional):
        prompt = torch.randint(0, 40, (2, 9), generator=ctx.generator(2)).to(ctx.device)
        t_cache, l_cache = model.generate(prompt, 24, use_cache=True, cache_cls=self.cache_cls)
        t_full, l_full = model.generate(prompt, 24, use_cache=False)
        where = f"{positional}, prompt 9, 24 new tokens"
        ctx.expect(
            torch.equal(t_cache, t_full),
            f"{where}: greedy tokens with the KV cache {t_cache.tolist()} differ from those without {t_full.tolist()}",
            name="kv cache: same greedy tokens",
        )
        ctx.assert_close(l_cache, l_full, name="kv cache: step logits = no-cache logits", where=where)
        seq = torch.cat([prompt, t_cache], 1)
        full = model(seq)[:, prompt.shape[1] - 1 : -1]
        ctx.assert_close(l_cache, full, name="kv cache: step logits = one full forward", where=where)

    def _train(self, ctx, config):
        text, desc = load_corpus(real=True)
        ctx.note(f"data: {desc}")
        split = int(0.9 * len(text))
        tok = CharTokenizer.fit(text[:split], min_freq=20)
        train_ids, test_ids = tok.encode(text[:split]), tok.encode(text[split:])
        counts = torch.bincount(train_ids, minlength=tok.vocab_size).double()
        p = counts[counts > 0] / counts.sum()
        unigram = float(-(p * p.log()).sum())
        x, y = windows(train_ids, config.steps * config.batch_size, config.seq_len, ctx.generator(3))
        model = self._model(ctx, config, tok.vocab_size)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
        data = (x.to(ctx.device), y.to(ctx.device))
        log = fit(model, opt, data, batch_size=config.batch_size, loss_fn=lm_loss, seed=ctx.rng_seed)
        log.record(ctx)
        xt, yt = windows(test_ids, 64, config.seq_len, ctx.generator(4))
        model.eval()
        with torch.no_grad():
            held_out = float(lm_loss(model(xt.to(ctx.device)), yt.to(ctx.device)))
        ctx.metric("train_tokens_per_s", log.samples_per_s * config.seq_len)
        ctx.metric("unigram_entropy_nats", unigram)
        ctx.metric("held_out_loss_nats", held_out)
        ctx.metric("context_gain_nats", unigram - held_out)
        self._trained = (model, tok, test_ids)
        return log, unigram, held_out

    def prepare(self, ctx, impl, config):
        model = self._model(ctx, config, 100)
        if impl.startswith("generate"):  # speed does not depend on the weights: an untrained model will do
            model.eval()
            prompt = torch.randint(0, 100, (1, config.prompt_len), generator=ctx.generator(5)).to(ctx.device)
            cache = impl == "generate_kv_cache"
            gen = lambda: model.generate(prompt, config.new_tokens, use_cache=cache)
            return Prepared(fn=gen, items=config.new_tokens, item_unit="tokens")
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
        ids = torch.randint(0, 100, (10_000,), generator=ctx.generator(5))
        x, y = (t.to(ctx.device) for t in windows(ids, config.batch_size, config.seq_len, ctx.generator(6)))
        step = lambda: standard_step(model, opt, x, y, lm_loss)
        return Prepared(fn=step, items=config.batch_size * config.seq_len, item_unit="tokens")

    def bench(self, ctx):
        config = ctx.configs[0]
        self._train(ctx, config)
        model, tok, test_ids = self._trained
        for name in ("generate_kv_cache", "generate_no_cache"):  # an untrained model of the same shape
            ctx.measure(name, self.prepare(ctx, name, config), config=config)
        prompt = test_ids[: config.prompt_len][None].to(ctx.device)  # (1, prompt_len)
        out, _ = model.generate(prompt, config.new_tokens)
        ctx.note(f"sample (greedy, {config.new_tokens} chars after {tok.decode(prompt[0])!r}): {tok.decode(out[0])!r}")
        chars = [repr(c)[1:-1] for c in tok.decode(prompt[0])]
        ctx.heatmap(
            "attention map (last layer, mean over heads)",
            last_layer_map(model, prompt),
            x=chars,
            y=chars,
            x_label="key (earlier character)",
            y_label="query character",
            caption="causal self-attention of the trained model on a held-out prompt",
        )
