"""research.gpt2_repro: the 124M count, FLOPs per token, MFU, llm.c shard header (mutants: test_mutants.py)."""

import numpy as np
import pytest
import torch

from harness import REGISTRY
from harness.data.lm_tokens import lm_tokens
from harness.data.shards import HEADER_INTS, read_shard, write_shard
from harness.testing import run_check
from models.gpt2 import GPT2_124M, GPT2_124M_PARAMS, GPT2_VOCAB, NANOGPT_PRINTED_PARAMS, flops_per_token, mfu
from models.transformer import GPT

Task = REGISTRY.get("research.gpt2_repro")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {"GPT-2 124M parameter count", "llm.c shard header", "loss falls"} <= set(rec.checks)


def test_124m_count_tied_and_nanogpt_print():
    with torch.device("meta"):
        m = GPT(GPT2_124M, GPT2_VOCAB)
    n = sum(p.numel() for p in m.parameters())
    assert n == GPT2_124M_PARAMS == 124_439_808
    assert n - 1024 * 768 == NANOGPT_PRINTED_PARAMS  # nanoGPT's "123.65M" omits position embeddings
    assert round(NANOGPT_PRINTED_PARAMS / 1e6, 2) == 123.65
    assert n + GPT2_VOCAB * 768 == 163_037_184  # an untied head


def test_flops_per_token_palm_formula():
    # 6N + 12 L H Q T, PaLM appendix B; N without position embeddings as nanoGPT's estimate_mfu
    assert flops_per_token(NANOGPT_PRINTED_PARAMS, 12, 12, 64, 1024) == 741_920_256 + 113_246_208
    assert flops_per_token(10, 1, 1, 1, 1) == 72
    with pytest.raises(ValueError):
        flops_per_token(-1, 1, 1, 1, 1)


def test_mfu_worked_example():
    # 100k tokens/s at 855,166,464 FLOPs/token on a 312 TFLOP/s (A100 bf16) peak: 27.4 %
    assert mfu(100_000, 855_166_464, 312e12) == pytest.approx(0.274092, rel=1e-5)
    with pytest.raises(ValueError, match="peak"):
        mfu(1.0, 1.0, 0.0)


def test_llmc_header(tmp_path):
    p = write_shard(tmp_path / "a.bin", np.arange(300) % 256)
    h = np.fromfile(p, dtype="<i4", count=HEADER_INTS)
    assert (int(h[0]), int(h[1]), int(h[2])) == (20240520, 1, 300) and not h[3:].any()
    assert p.stat().st_size == 1024 + 2 * 300
    assert np.array_equal(np.asarray(read_shard(p)), np.arange(300) % 256)


def test_llm_c_shards_under_data_dir_replace_the_bytes(tmp_path, monkeypatch):
    """GPT-2 token shards in --data-dir (llm.c naming: *_train_*.bin, *_val_*.bin) become the bench's
    data (``harness.data.lm_tokens``), with GPT-2's vocabulary; without them the bytes of the corpus
    (vocabulary 256)."""
    _, _, _, vocab = lm_tokens(real=True)
    assert vocab == 256
    d = tmp_path / "token_shards"
    d.mkdir()
    rng = np.random.default_rng(0)
    train, val = (torch.from_numpy(rng.integers(0, GPT2_VOCAB, n)) for n in (5000, 700))
    write_shard(d / "fineweb_val_000000.bin", val, model="gpt-2")
    write_shard(d / "fineweb_train_000001.bin", train, model="gpt-2")
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    got_train, got_val, desc, vocab = lm_tokens(real=True)
    assert vocab == GPT2_VOCAB and "2 llm.c shards" in desc
    assert torch.equal(got_train, train) and torch.equal(got_val, val)


def test_compile_flag_wraps_the_model():
    import dataclasses

    from harness.context import Context, TaskRecord

    task = Task()
    ctx = Context(task, mode="bench", device="cpu", dtype=torch.float32, size="tiny", rng_seed=0,
                  record=TaskRecord(id=Task.id))  # fmt: skip
    run = dataclasses.replace(Task.sizes["tiny"], compile=True)
    model, fwd = task._model(ctx, run, 256)
    assert fwd is not model and getattr(fwd, "_orig_mod", None) is model  # torch.compile's OptimizedModule
    assert Task.sizes["gpu"].compile and Task.sizes["gpu"].bf16
