"""5.01 char_rnn: loss falls below unigram entropy, sampling seeded and in-vocabulary; planted bugs are caught."""

import dataclasses
import math

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.text import decoding

Task = REGISTRY.get("rnn.char_rnn")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    m = rec.metrics
    assert m["check_final_loss"] < m["check_unigram_entropy"] < m["check_initial_loss"]


def _global_rng_sample(step_fn, state, start, steps, *, generator, temperature=1.0, banned=()):
    """Draws from the global RNG: the generator passed in is ignored."""
    out, last = [], start
    for _ in range(steps):
        logits, state = step_fn(last, state)
        logits[:, list(banned)] = -math.inf
        last = torch.multinomial(torch.softmax(logits, -1), 1)[:, 0]
        out.append(last)
    return torch.stack(out, 1)


def _no_ban_sample(step_fn, state, start, steps, *, generator, temperature=1.0, banned=()):
    return decoding.sample(step_fn, state, start, steps, generator=generator, temperature=temperature)


class GlobalRng(Task):
    sample_fn = staticmethod(_global_rng_sample)


class NoBan(Task):
    sample_fn = staticmethod(_no_ban_sample)


class NeverSteps(Task):
    sizes = {**Task.sizes, "tiny": dataclasses.replace(Task.sizes["tiny"], steps=5)}

    def train_step(self, model, opt, window):
        loss = torch.nn.functional.cross_entropy(model(window[:, :-1]).flatten(0, 1), window[:, 1:].flatten())
        loss.backward()
        return loss.detach()


def test_sampler_on_the_global_rng_is_caught():
    expect_check_fails(GlobalRng, match="differ")


def test_sampler_that_emits_pad_or_unk_is_caught():
    expect_check_fails(NoBan, match="<pad>/<unk>")


def test_model_that_never_trains_is_caught():
    expect_check_fails(NeverSteps, match="unigram entropy")
