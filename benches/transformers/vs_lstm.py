"""6.05 Transformer vs LSTM on sequence tasks.

Compared: ``models.transformer.EncoderClassifier`` (tiny preset: 2 pre-LN blocks, d=32, learned
positions, mean pooling; ~19-22k parameters) and ``models.sequence.SequenceModel`` with ``nn.LSTM``
(embedding 32, hidden 64, classifier on the last state; ~26k parameters), with the same data,
steps, samples, AdamW learning rate and seed at several sequence lengths, on *first-token recall*
(SYNTHETIC, ``harness.data.recall``): each sequence starts with one of 4 key tokens, the label
is which one, and 10% of the other T-1 positions hold key tokens too (distractors), so a model
must remember the *first* key. Accuracy and training time are plotted against length, with the
trained Transformer's attention map at the longest.

Lesson: at equal budget the Transformer solves first-token recall at every length while the
LSTM solves it only at short lengths and stays near chance beyond: its gradient has to cross
T-1 recurrent steps (Bengio et al. 1994; Hochreiter & Schmidhuber 1997 built the LSTM against
exactly this), attention reaches position 0 in one hop (the map shows every query's weight on
position 0). The Transformer pays in time per step: its attention grows as T^2.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.data.recall import first_token_recall
from harness.mutants import Mutant
from harness.train import fit, standard_step
from kernels.layers.attention_maps import record_attention
from kernels.text import wrong
from models.sequence import SequenceModel, SequenceModelConfig
from models.transformer import EncoderClassifier, preset


@dataclasses.dataclass(frozen=True)
class VsConfig:
    """One budget shared by both models, applied at every length."""

    lengths: tuple[int, ...] = (8, 32)
    """sequence lengths T trained on (each a fresh pair of models)"""
    steps: int = 200
    """optimizer steps per model and length"""
    batch_size: int = 32
    """sequences per step"""
    lr: float = 1e-2
    """AdamW learning rate of both"""
    n_train: int = 4000
    """training sequences per length"""
    n_test: int = 500
    """held-out sequences per length"""
    vocab: int = 32
    """token ids: 0 pad (unused), 1..keys key tokens, the rest filler"""
    keys: int = 4
    """classes (chance = 1 / keys)"""
    distractors: float = 0.1
    """probability that a later position holds a key token too"""
    lstm_hidden: int = 64
    """LSTM state width (embedding 32)"""

    def label(self) -> str:
        return f"T={list(self.lengths)},steps={self.steps},bs={self.batch_size},lr={self.lr}"

    def data(self, n: int, T: int, seed: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(x int64 (n, T), y int64 (n,)) of first-token recall with this vocabulary and keys, on ``device``."""
        x, y = first_token_recall(n, T, vocab=self.vocab, keys=self.keys, distractors=self.distractors, seed=seed)
        return x.to(device), y.to(device)


@task("transformers.vs_lstm", seed="6.05", title="Transformer vs LSTM on sequence tasks")
class VsLstm(Comparison):
    __doc__ = __doc__
    variants = ("transformer", "lstm")
    sizes = {
        "tiny": VsConfig(),
        "cpu": VsConfig(lengths=(8, 32, 128)),
        "gpu": VsConfig(lengths=(8, 32, 128, 512, 1024), steps=1000, batch_size=64, n_train=20000),
    }
    metrics = {
        "transformer.T128.accuracy": "held-out accuracy of the Transformer at T=128, share",
        "lstm.T128.accuracy": "held-out accuracy of the LSTM at T=128, share",
    }
    claims = (
        metric("transformer.T128.accuracy", ">=", 0.9, text="the Transformer recalls the first token >= 90 % at T=128"),
        metric("lstm.T128.accuracy", "<=", 0.5,
               text="the LSTM stays <= 50 % at T=128 on the same budget (chance 25 %)"),
        time_ratio("transformer", to="lstm", at_most=3.0,
                   text="a Transformer training step at T=128 costs <= 3x an LSTM's"),
    )  # fmt: skip

    def make_model(self, variant, config, T):
        if variant == "transformer":
            return EncoderClassifier(preset("tiny", max_len=T), config.vocab, config.keys)
        return SequenceModel(SequenceModelConfig(config.vocab, 32, config.lstm_hidden, config.keys, head="last"))

    #: the training loop (both models get the same budget through it)
    fit_fn = staticmethod(fit)
    _short = {"tiny": dataclasses.replace(sizes["tiny"], steps=120)}  # each bug shows long before 200 steps
    mutants = (
        Mutant("no_positions", "the Transformer has no positional information",
               {"make_model": wrong.for_variant(make_model, "transformer", wrong.without_positions), "sizes": _short},
               match="Transformer reached only"),
        Mutant("lstm_frozen", "the LSTM does not learn",
               {"make_model": wrong.for_variant(make_model, "lstm", wrong.frozen_lstm), "sizes": _short},
               match="lstm reached only"),
        Mutant("unequal_budgets", "the LSTM gets half the steps",
               {"fit_fn": staticmethod(wrong.lstm_half_budget), "sizes": _short}, match="budgets differ"),
    )  # fmt: skip

    def _build(self, ctx, variant, config, T):
        torch.manual_seed(ctx.rng_seed)
        model = self.make_model(variant, config, T).to(ctx.device, ctx.dtype)
        return model, torch.optim.AdamW(model.parameters(), lr=config.lr)

    def _run(self, ctx, config, T):
        train = config.data(config.n_train, T, ctx.rng_seed, ctx.device)
        test = config.data(config.n_test, T, ctx.rng_seed + 1, ctx.device)
        logs, epochs = {}, -(-config.steps * config.batch_size // config.n_train)
        for v in self.variants:
            model, opt = self._build(ctx, v, config, T)
            logs[v] = self.fit_fn(model, opt, train, batch_size=config.batch_size, epochs=epochs,
                                  max_steps=config.steps, eval_data=test, eval_every=max(1, config.steps // 4),
                                  seed=ctx.rng_seed)  # fmt: skip
            logs[v].params = sum(p.numel() for p in model.parameters())
            self._models = {**getattr(self, "_models", {}), v: (model, test)}
            ctx.curve(f"test accuracy (T={T})", logs[v].eval_steps, logs[v].eval_accuracy, y_label="accuracy", series=v)
        return logs

    def _sweep(self, ctx, config):
        results = {v: {} for v in self.variants}  # variant -> {T: its TrainLog}
        for T in config.lengths:
            for v, log in self._run(ctx, config, T).items():
                results[v][T] = log
                ctx.metric(f"{v}.T{T}.accuracy", log.final_accuracy)
                ctx.metric(f"{v}.T{T}.train_time_s", log.train_time_s)
        for v, logs in results.items():
            xs, acc = list(logs), [log.final_accuracy for log in logs.values()]
            ctx.curve("accuracy vs length", xs, acc, x_label="T (tokens)", y_label="held-out accuracy", series=v,
                      log_x=True)  # fmt: skip
            ctx.curve("train time vs length", xs, [log.train_time_s for log in logs.values()], x_label="T (tokens)",
                      y_label=f"s for {config.steps} steps", series=v, log_x=True, log_y=True)  # fmt: skip
            ctx.metric(f"{v}.params_at_T{xs[-1]}", logs[xs[-1]].params)
        rows = [{"T": T, **{f"{v} acc": round(results[v][T].final_accuracy, 3) for v in self.variants},
                 **{f"{v} s": round(results[v][T].train_time_s, 2) for v in self.variants}}
                for T in config.lengths]  # fmt: skip
        ctx.table("accuracy and time per length", rows)
        return results

    def check(self, ctx):
        config = ctx.configs[0]
        results = self._sweep(ctx, config)
        chance = 1 / config.keys
        for T in config.lengths:
            t_log, l_log = results["transformer"][T], results["lstm"][T]
            ctx.expect(t_log.steps[-1] == l_log.steps[-1] == config.steps and t_log.samples == l_log.samples,
                       f"T={T}: budgets differ: transformer {t_log.steps[-1]} steps / {t_log.samples} samples, "
                       f"lstm {l_log.steps[-1]} / {l_log.samples}", name="same budget for both")  # fmt: skip
            ctx.expect(t_log.final_accuracy >= 0.9, f"T={T}: the Transformer reached only {t_log.final_accuracy:.3f} "
                       f"(chance {chance}) on first-token recall",
                       name="transformer learns at every length")  # fmt: skip
        for v in self.variants:
            acc = results[v][config.lengths[0]].final_accuracy
            ctx.expect(acc >= 0.6, f"{v} reached only {acc:.3f} at T={config.lengths[0]} (chance {chance})",
                       name="both beat chance at the shortest length")  # fmt: skip

    def prepare(self, ctx, impl, config):
        T = config.lengths[-1]
        model, opt = self._build(ctx, impl, config, T)
        x, y = config.data(config.batch_size, T, ctx.rng_seed, ctx.device)
        return Prepared(fn=lambda: standard_step(model, opt, x, y), items=config.batch_size * T, item_unit="tokens")

    def bench(self, ctx):
        config = ctx.configs[0]
        self._sweep(ctx, config)
        for v in self.variants:
            ctx.measure(v, self.prepare(ctx, v, config), config=f"train step at T={config.lengths[-1]}")
        model, (x, y) = self._models["transformer"]
        x = x[:1, :24]  # (1, <= 24): a readable map
        names = [f"k{int(t)}" if 1 <= t <= config.keys else str(int(t)) for t in x[0]]
        with torch.no_grad(), record_attention(model.eval()) as maps:
            model(x)
        ctx.heatmap("attention map (last layer, mean over heads)", maps[-1][0].mean(0), x=names, y=names,
                    x_label="key position (k = key token)", y_label="query position",
                    caption=f"trained Transformer, held-out sequence (answer k{int(y[0]) + 1})")  # fmt: skip
