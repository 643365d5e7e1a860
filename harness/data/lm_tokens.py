"""Token streams for language-model training: llm.c GPT-2 shards under ``--data-dir``, else bytes.

llm.c's data scripts (e.g. ``fineweb.py``) write GPT-2-tokenised ``.bin`` shards
(:mod:`harness.data.shards`); with them under ``--data-dir`` (``token_shards/`` or
``fineweb10B/``: ``*train*.bin`` / ``*val*.bin``) a model trains on real GPT-2 tokens
(vocabulary 50,257). Without them, the stdlib-docstring corpus (:mod:`harness.data.corpus`)
as UTF-8 bytes (vocabulary 256): no tokenizer to download.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.data.corpus import load_corpus
from harness.data.shards import read_shard
from harness.data.sources import resolve
from models.gpt2 import GPT2_VOCAB  # the ids llm.c's GPT-2 shards hold

#: tokens read from each side's shards at most (int64 in memory: 128 MB)
MAX_TOKENS = 1 << 24


def lm_tokens(real: bool = False) -> tuple[torch.Tensor, torch.Tensor, str, int]:
    """(train ids int64 (N,), held-out ids int64 (M,), description, vocabulary size).

    ``real`` and shards present: the shards named ``*val*`` (else the last one) are held out,
    the rest train, at most :data:`MAX_TOKENS` of each shard. Otherwise the corpus's bytes, the
    last 10 % held out (the embedded corpus whatever ``--data-dir`` holds: checks stay reproducible).
    """
    src = resolve("token_shards")
    if real and src.path is not None:
        shards = sorted(src.path.glob("*.bin"))
        val = [f for f in shards if "val" in f.name] or shards[-1:]
        train = [f for f in shards if f not in val] or val

        def load(files):
            return torch.from_numpy(np.concatenate([read_shard(f)[:MAX_TOKENS] for f in files]).astype(np.int64))

        return load(train), load(val), f"{len(shards)} llm.c shards at {src.path}", GPT2_VOCAB
    text, desc = load_corpus(real=False)
    ids = torch.tensor(list(text.encode()), dtype=torch.int64)  # bytes: vocabulary 256
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:], desc, 256
