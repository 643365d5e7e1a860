"""GPT-2 (Radford et al. 2019) as a ``models.transformer.GPT`` config, its parameter count and FLOPs.

GPT-2 small ("124M"): 12 layers, 12 heads of 64, d_model 768, MLP 3072, 1,024 positions, the
50,257-token BPE vocabulary, token embedding tied to the output head (Press & Wolf 2017). Our
``GPT`` has the same parameter tensors as the released checkpoint (the fused ``c_attn`` is our
``q`` + ``kv``), so the counts agree exactly; it uses exact GELU where GPT-2 used the tanh
approximation (no parameter difference).
"""

from __future__ import annotations

from models.transformer import TransformerConfig

#: GPT-2's BPE vocabulary (50,000 merges + 256 bytes + <|endoftext|>)
GPT2_VOCAB = 50_257
GPT2_124M = TransformerConfig(d_model=768, n_heads=12, n_layers=12, d_ff=3072, max_len=1024)
#: every parameter of GPT-2 small with tied embeddings (Hugging Face ``gpt2`` counts the same)
GPT2_124M_PARAMS = 124_439_808
#: nanoGPT's ``get_num_params()`` leaves out the 1,024 x 768 position embeddings and prints
#: "number of parameters: 123.65M"
NANOGPT_PRINTED_PARAMS = 123_653_376


def flops_per_token(n_params: int, n_layers: int, n_heads: int, head_dim: int, seq_len: int) -> int:
    """Training FLOPs per token, forward + backward: 6 N + 12 L H Q T.

    PaLM (Chowdhery et al. 2022, appendix B): 6N for the matmuls against the N weights (2 per
    weight forward, 4 backward) plus 12 L H Q T for attention's QK^T and AV (T keys per query,
    L layers of H heads of size Q), as in nanoGPT's ``estimate_mfu``, where N excludes the
    position embeddings (they are a lookup, no multiply). Raises ValueError for a negative input.
    """
    if min(n_params, n_layers, n_heads, head_dim, seq_len) < 0:
        raise ValueError("flops_per_token: every argument must be >= 0")
    return 6 * n_params + 12 * n_layers * n_heads * head_dim * seq_len


def mfu(tokens_per_s: float, flops_token: float, peak_flops_per_s: float) -> float:
    """Model FLOP utilisation: achieved model FLOP/s over the peak, a fraction in [0, 1] normally.

    Raises ValueError for a peak <= 0 (no peak measured)."""
    if peak_flops_per_s <= 0:
        raise ValueError(f"mfu: the peak must be > 0 FLOP/s, got {peak_flops_per_s}")
    return tokens_per_s * flops_token / peak_flops_per_s
