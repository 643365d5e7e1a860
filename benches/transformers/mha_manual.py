"""6.07 Multi-head attention by hand.

Compared: ``kernels.layers.attention.MultiheadAttention`` (``manual``: W_q, W_k, W_v split from
the input projection, heads separated by reshapes, softmax(Q K^T / sqrt(D) + masks) V per head,
heads concatenated and projected) against ``nn.MultiheadAttention`` (reference and baseline,
``torch_mha``) holding the same weights (torch's parameter names). Dropout off, eval mode.

Check (tiny, float32 and float64): output and attention weights for self- and cross-attention
(L != S), ``batch_first`` both ways, unbatched input, ``key_padding_mask`` as booleans and as
additive floats, ``attn_mask`` as a causal boolean, a float bias and a 3-D (B*H, L, S) boolean,
alone and together, ``need_weights`` and ``average_attn_weights`` both ways; wrong mask shapes
raise ValueError. nn.MultiheadAttention's boolean masks mark what is *blocked*, the opposite of
``F.scaled_dot_product_attention``'s.

Bench (cpu: self-attention, B=8, E=512, H=8, L = 64, 256, 1024, ``need_weights=False``).

Lesson: the hand version's projections are the same three GEMMs as torch's, so at short lengths
both take about the same time; as L grows the attention core differs: with
``need_weights=False`` torch hands the heads to ``F.scaled_dot_product_attention`` (a fused
kernel that never stores the (B, H, L, L) weights), while the hand version materialises scores
and softmax. Asking torch for the weights puts it on the same explicit path (per its source).
"""

from __future__ import annotations

import torch
from torch import nn

from harness import Operator, impl, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant
from kernels.layers.attention import MultiheadAttention
from kernels.layers.attention_wrong import HeadsSplitWrong, InvertedPadding, NoScale, SummedHeads
from kernels.layers.masks import MhaConfig, mha_inputs


def _call(m, q, k, v, kpm, mask, need_weights, average):
    """(output, weights), or output alone with need_weights=False (the weights are None then:
    ``extra_checks`` asserts that separately)."""
    out, w = m(q, k, v, key_padding_mask=kpm, attn_mask=mask, need_weights=need_weights, average_attn_weights=average)
    return (out, w) if need_weights else out


@task("transformers.mha_manual", seed="6.07", title="multi-head attention by hand")
class MhaManual(Operator):
    __doc__ = __doc__
    check_dtypes = (torch.float32, torch.float64)
    #: the module under test
    manual_cls = MultiheadAttention
    claims = (
        speedup(
            "torch_mha",
            over="manual",
            at_least=1.3,
            text="nn.MultiheadAttention (fused SDPA core) >= 1.3x the hand version at the longest L",
        ),
        time_ratio(
            "manual",
            to="torch_mha",
            at_most=1.3,
            config="L=64,",
            text="at L=64 the hand version is within 1.3x of torch (the same projection GEMMs)",
        ),
    )
    mutants = (
        Mutant("missing_scale", "no 1/sqrt(D) scale", {"manual_cls": NoScale}, match="manual"),
        Mutant(
            "inverted_key_padding",
            "key_padding_mask read with F.sdpa's polarity",
            {"manual_cls": InvertedPadding},
            match="manual",
        ),
        Mutant(
            "summed_head_weights", "per-head weights summed, not averaged", {"manual_cls": SummedHeads}, match="manual"
        ),
        Mutant(
            "heads_split_wrong_axis", "heads take every H-th feature", {"manual_cls": HeadsSplitWrong}, match="manual"
        ),
    )
    sizes = {
        "tiny": [
            MhaConfig(2, 5, 5, 12, 3),
            MhaConfig(3, 6, 6, 16, 4, batch_first=True, key_padding="bool", attn_mask="causal"),
            MhaConfig(2, 4, 7, 16, 2, cross=True, key_padding="float", attn_mask="bias", average=False),
            MhaConfig(2, 5, 8, 12, 4, batch_first=True, cross=True, attn_mask="per_head", average=False),
            MhaConfig(2, 6, 6, 8, 2, key_padding="bool", need_weights=False),
            MhaConfig(0, 5, 5, 8, 2, key_padding="bool", attn_mask="causal"),
        ],
        "cpu": [MhaConfig(8, t, t, 512, 8, batch_first=True, need_weights=False) for t in (64, 256, 1024)],
        "gpu": [MhaConfig(16, t, t, 1024, 16, batch_first=True, need_weights=False) for t in (256, 1024, 4096)],
    }

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # nn.MultiheadAttention's own initialisation
        module = nn.MultiheadAttention(config.embed_dim, config.heads, batch_first=config.batch_first)
        with torch.no_grad():  # torch zeroes the biases at init: make them count
            module.in_proj_bias.normal_(0, 0.1)
            module.out_proj.bias.normal_(0, 0.1)
        module = module.to(device, dtype).eval()
        q, k, v, kpm, mask = (t if t is None else t.to(device) for t in mha_inputs(config, g, dtype))
        return q, k, v, kpm, mask, config.need_weights, config.average, module

    def reference(self, q, k, v, kpm, mask, need_weights, average, module):
        return _call(module, q, k, v, kpm, mask, need_weights, average)

    def flops(self, config):
        L, E = config.tgt_len, config.embed_dim
        S = config.src_len if config.cross else L
        # projections (q: L, k and v: S, out: L rows of E x E) + QK^T and PV
        return 2 * max(config.batch, 1) * ((2 * L + 2 * S) * E * E + 2 * L * S * E)

    def items(self, config):
        return max(config.batch, 1) * config.tgt_len, "tokens"

    @impl(baseline=True)
    def torch_mha(self, q, k, v, kpm, mask, need_weights, average, module):
        return lambda: _call(module, q, k, v, kpm, mask, need_weights, average)

    @impl
    def manual(self, q, k, v, kpm, mask, need_weights, average, module):
        mine = self.manual_cls.from_torch(module)
        return lambda: _call(mine, q, k, v, kpm, mask, need_weights, average)

    def extra_checks(self, ctx):
        module = nn.MultiheadAttention(8, 2)
        mine = self.manual_cls.from_torch(module)
        x = torch.randn(5, 3, 8)
        ctx.expect_raises(
            ValueError,
            lambda: mine(x, x, x, key_padding_mask=torch.zeros(5, 3, dtype=torch.bool)),
            match="key_padding_mask",
            name="key_padding_mask of the wrong shape refused",
        )
        ctx.expect_raises(
            ValueError,
            lambda: mine(x, x, x, attn_mask=torch.zeros(4, 5, dtype=torch.bool)),
            match="attn_mask",
            name="attn_mask of the wrong shape refused",
        )
        ctx.expect_raises(
            ValueError, lambda: self.manual_cls(10, 3), match="divisible", name="E not divisible by H refused"
        )
        ctx.expect(
            mine(x, x, x, need_weights=False)[1] is None,
            "need_weights=False should return None weights",
            name="need_weights=False returns no weights",
        )
