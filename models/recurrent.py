"""Hand-written multi-layer LSTM and GRU, equal to ``nn.LSTM`` / ``nn.GRU`` with the same weights.

Equations (PyTorch docs of ``nn.LSTM`` and ``nn.GRU``; Hochreiter & Schmidhuber 1997 with
the forget gate of Gers et al. 2000; Cho et al. 2014 for the GRU), per layer and step::

    LSTM, gates stacked i, f, g, o along the rows of weight_ih (4H, C) and weight_hh (4H, H):
      i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      f = sigmoid(W_if x + b_if + W_hf h + b_hf)
      g = tanh   (W_ig x + b_ig + W_hg h + b_hg)      o = sigmoid(W_io x + b_io + W_ho h + b_ho)
      c' = f * c + i * g                              h' = o * tanh(c')

    GRU, gates stacked r, z, n:
      r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)      z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   h' = (1 - z) * n + z * h

Note the GRU's candidate: r multiplies ``W_hn h + b_hn`` *after* the matmul (as cuDNN
does), not ``W_hn (r * h)`` as in Cho et al.'s paper; that is what lets all three
h-projections be one (B, H) @ (H, 3H) matmul per step.

The parameters have torch's names and shapes (``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}``), so ``mine.load_state_dict(torch_rnn.state_dict())``
copies weights both ways. ``forward`` takes what torch's takes: a padded batch
(time-major or ``batch_first``), an unbatched (T, C) sequence, or a ``PackedSequence``
(sorted or not), with optional initial states.

Speed: the input projection ``W_ih x + b_ih`` of a layer is one matmul over all steps,
hoisted out of the time loop; only ``W_hh h`` stays inside (it depends on the previous
step). What remains is a Python loop over T with a few small kernels per step, so this
module is slower than torch's fused one, by a factor that grows with T.

Shape legend: T time steps, B batch, C input features, H hidden, L layers, G gates
(4 for the LSTM, 3 for the GRU), N = sum of lengths (rows of a packed batch).

Bidirectional stacks (``bidirectional=True``): each layer runs a second set of weights
(``*_reverse``) from the last step to the first and concatenates both outputs (2H features);
layer k > 0 reads those 2H features; h_n/c_n hold (L*2, B, H) states ordered layer by layer,
forward then reverse. In a packed batch the reverse pass starts each sequence at its own
last step, as torch does. LSTM projections (``proj_size`` = P > 0, Sak et al., "Long
Short-Term Memory Based Recurrent Neural Network Architectures for Large Vocabulary Speech
Recognition", 2014): h' = W_hr (o * tanh(c')) with W_hr (P, H), so h, the outputs and
weight_hh (4H, P) are P wide while c stays H wide. ``proj_size`` on a GRU raises
ValueError, as in torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

State = tuple[torch.Tensor, ...]  # (h,) for the GRU, (h, c) for the LSTM; each (B, H)


@dataclasses.dataclass(frozen=True)
class RecurrentConfig:
    """Shape and options of a recurrent stack (the arguments of ``nn.LSTM`` / ``nn.GRU``)."""

    input_size: int
    """C: features per time step of the input"""
    hidden_size: int
    """H: features of the hidden (and LSTM cell) state"""
    num_layers: int = 1
    """L: stacked layers; layer k > 0 reads layer k-1's outputs"""
    bias: bool = True
    """whether each layer has bias_ih and bias_hh (both, as in torch)"""
    batch_first: bool = False
    """padded input/output as (B, T, C) instead of (T, B, C); states stay (L, B, H)"""
    dropout: float = 0.0
    """dropout probability on the outputs of every layer but the last, in training mode only"""
    bidirectional: bool = False
    """also run each layer from the last step to the first; outputs 2x the features"""
    proj_size: int = 0
    """P: LSTM only; > 0 projects h to P features (0 < P < hidden_size), 0 = no projection"""

    def __post_init__(self) -> None:
        if self.input_size < 1 or self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(
                f"RecurrentConfig: input_size, hidden_size and num_layers must be >= 1, got "
                f"{self.input_size}, {self.hidden_size}, {self.num_layers}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"RecurrentConfig: dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.proj_size < self.hidden_size:
            raise ValueError(
                f"RecurrentConfig: proj_size must be >= 0 and < hidden_size ({self.hidden_size}), got {self.proj_size}"
            )

    @property
    def directions(self) -> int:
        """D: 2 when bidirectional, else 1"""
        return 2 if self.bidirectional else 1

    @property
    def out_size(self) -> int:
        """features of h (and of each direction's output): proj_size when set, else hidden_size"""
        return self.proj_size or self.hidden_size

    def n_params(self, gates: int) -> int:
        """Parameter count for ``gates`` gates per layer (4: LSTM, 3: GRU), both directions."""
        g, h, o = gates * self.hidden_size, self.hidden_size, self.out_size
        per = [
            g * (self.input_size if k == 0 else o * self.directions)
            + g * o
            + (2 * g if self.bias else 0)
            + (o * h if self.proj_size else 0)
            for k in range(self.num_layers)
        ]
        return sum(per) * self.directions

    def torch_kwargs(self, cell: str) -> dict[str, Any]:
        """The keyword arguments of ``nn.LSTM`` (``cell="lstm"``) / ``nn.GRU`` for this config."""
        kw = dataclasses.asdict(self)
        if cell != "lstm":
            kw.pop("proj_size")  # nn.GRU refuses the argument even when 0
        return kw


PRESETS: dict[str, RecurrentConfig] = {
    "tiny": RecurrentConfig(input_size=8, hidden_size=16, num_layers=2),
    "small": RecurrentConfig(input_size=64, hidden_size=128, num_layers=2),
    # Zaremba, Sutskever & Vinyals, "Recurrent Neural Network Regularization", 2014 (PTB LMs):
    # 2-layer LSTMs with embedding width = hidden width
    "zaremba_small": RecurrentConfig(input_size=200, hidden_size=200, num_layers=2),
    "zaremba_medium": RecurrentConfig(input_size=650, hidden_size=650, num_layers=2, dropout=0.5),
    "zaremba_large": RecurrentConfig(input_size=1500, hidden_size=1500, num_layers=2, dropout=0.65),
}


def preset(name: str, **overrides: Any) -> RecurrentConfig:
    """The named preset with fields replaced by ``overrides``; ValueError for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown recurrent preset {name!r}; choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


class _Recurrent(nn.Module):
    """The layer loop, packing and state handling shared by :class:`LSTM` and :class:`GRU`."""

    GATES: ClassVar[int]
    N_STATE: ClassVar[int]  # tensors in a step's state: 2 for the LSTM (h, c), 1 for the GRU
    TORCH: ClassVar[type[nn.RNNBase]]

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        if config.proj_size and self.GATES != 4:
            raise ValueError(
                f"{type(self).__name__}: proj_size={config.proj_size}: projections exist for the LSTM only"
            )
        self.config = config
        g, h, o = self.GATES * config.hidden_size, config.hidden_size, config.out_size
        for k in range(config.num_layers):
            c = config.input_size if k == 0 else o * config.directions
            for sfx in ("", "_reverse")[: config.directions]:  # torch's names and order
                self.register_parameter(f"weight_ih_l{k}{sfx}", nn.Parameter(torch.empty(g, c)))  # (G*H, C)
                self.register_parameter(f"weight_hh_l{k}{sfx}", nn.Parameter(torch.empty(g, o)))  # (G*H, P|H)
                if config.bias:
                    self.register_parameter(f"bias_ih_l{k}{sfx}", nn.Parameter(torch.empty(g)))
                    self.register_parameter(f"bias_hh_l{k}{sfx}", nn.Parameter(torch.empty(g)))
                if config.proj_size:
                    self.register_parameter(f"weight_hr_l{k}{sfx}", nn.Parameter(torch.empty(o, h)))  # (P, H)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch's RNN modules."""
        bound = 1.0 / math.sqrt(self.config.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @classmethod
    def from_torch(cls, module: nn.RNNBase) -> _Recurrent:
        """A copy of ``module`` (an ``nn.LSTM`` / ``nn.GRU``) with its weights, dtype and device."""
        if not isinstance(module, cls.TORCH):
            raise TypeError(f"{cls.__name__}.from_torch needs an nn.{cls.TORCH.__name__}, got {type(module).__name__}")
        cfg = RecurrentConfig(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bias,
            module.batch_first,
            float(module.dropout),
            module.bidirectional,
            getattr(module, "proj_size", 0),
        )
        ref = next(module.parameters())
        mine = cls(cfg).to(ref.device, ref.dtype)
        mine.load_state_dict(module.state_dict())
        return mine

    def to_torch(self) -> nn.RNNBase:
        """The ``nn.LSTM`` / ``nn.GRU`` with this module's config and weights."""
        ref = next(self.parameters())
        m = self.TORCH(**self.config.torch_kwargs("lstm" if self.GATES == 4 else "gru")).to(ref.device, ref.dtype)
        m.load_state_dict(self.state_dict())
        return m

    def layer_weights(
        self, k: int, reverse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(weight_ih, weight_hh, bias_ih or None, bias_hh or None) of layer ``k`` (its reverse direction)."""
        sfx = "_reverse" if reverse else ""
        get = lambda n: getattr(self, f"{n}_l{k}{sfx}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _step(self, xw: torch.Tensor, state: State, w_hh, b_hh, w_hr) -> State:
        """:meth:`cell`, then the LSTM projection h = W_hr h when ``w_hr`` (P, H) is given."""
        state = self.cell(xw, state, w_hh, b_hh)
        return state if w_hr is None else (F.linear(state[0], w_hr), *state[1:])

    def cell(self, xw: torch.Tensor, state: State, w_hh: torch.Tensor, b_hh: torch.Tensor | None) -> State:
        """One step: ``xw`` = W_ih x + b_ih (b, G*H), ``state`` tensors (b, H) -> new state."""
        raise NotImplementedError

    # -- states -----------------------------------------------------------------------------------
    def _split_hx(self, hx: Any) -> tuple[torch.Tensor, ...] | None:
        return None if hx is None else (hx,)

    def _join_hx(self, states: State) -> Any:
        return states[0]

    def _initial(self, hx: Any, batch: int, unbatched: bool, like: torch.Tensor) -> State:
        cfg = self.config
        ld = cfg.num_layers * cfg.directions
        sizes = (cfg.out_size, cfg.hidden_size)[: self.N_STATE]  # h is P wide with a projection, c stays H
        parts = self._split_hx(hx)
        if parts is None:
            return tuple(like.new_zeros(ld, batch, n) for n in sizes)  # each (L*D, B, P|H)
        for s, n in zip(parts, sizes):
            want = (ld, n) if unbatched else (ld, batch, n)
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != want:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(
                    f"{type(self).__name__}: initial state must be (num_layers*directions, batch, features) = "
                    f"{want}, got {got}"
                )
        return tuple(s.unsqueeze(1) if unbatched else s for s in parts)  # each (L*D, B, P|H)

    # -- the loops --------------------------------------------------------------------------------
    def _run_padded(self, xw: torch.Tensor, state: State, w_hh, b_hh, w_hr=None) -> tuple[torch.Tensor, State]:
        outs = []
        for t in range(xw.shape[0]):  # xw (T, B, G*H)
            state = self._step(xw[t], state, w_hh, b_hh, w_hr)
            outs.append(state[0])
        return torch.stack(outs), state  # (T, B, P|H)

    def _run_packed_reverse(
        self, xw: torch.Tensor, batch_sizes: list[int], state: State, w_hh, b_hh, w_hr=None
    ) -> tuple[torch.Tensor, State]:
        # Backwards over a packed batch: at step t the first batch_sizes[t] sequences are
        # active; a sequence joins (from its initial state) at its own last step.
        starts = [0]
        for b in batch_sizes[:-1]:
            starts.append(starts[-1] + b)
        outs: list[torch.Tensor] = [xw] * len(batch_sizes)
        cur: State | None = None
        rows = 0
        for t in reversed(range(len(batch_sizes))):
            b = batch_sizes[t]
            if b > rows:  # sequences b..rows-1 end at step t: they start here
                new = tuple(s[rows:b] for s in state)
                cur = new if cur is None else tuple(torch.cat([c, n]) for c, n in zip(cur, new))
                rows = b
            assert cur is not None
            cur = self._step(xw[starts[t] : starts[t] + b], cur, w_hh, b_hh, w_hr)  # rows (b, G*H)
            outs[t] = cur[0]
        assert cur is not None
        return torch.cat(outs), cur  # (N, P|H) in packed order, each (B, .) in sorted order

    def _run_packed(
        self, xw: torch.Tensor, batch_sizes: list[int], state: State, w_hh, b_hh, w_hr=None
    ) -> tuple[torch.Tensor, State]:
        # A packed batch is sorted by length, longest first: at step t only the first
        # batch_sizes[t] sequences are active. Rows that drop out are final; keep them aside.
        outs, finished, off, rows = [], [], 0, batch_sizes[0]
        for b in batch_sizes:
            if b < rows:
                finished.append(tuple(s[b:rows] for s in state))
                state = tuple(s[:b] for s in state)
                rows = b
            state = self._step(xw[off : off + b], state, w_hh, b_hh, w_hr)  # xw (N, G*H) -> rows (b, G*H)
            outs.append(state[0])
            off += b
        final = tuple(torch.cat([state[i]] + [f[i] for f in reversed(finished)]) for i in range(self.N_STATE))
        return torch.cat(outs), final  # (N, P|H), each (B, .) in sorted order

    def forward(self, input: torch.Tensor | PackedSequence, hx: Any = None) -> tuple[Any, Any]:
        """Run the stack over a sequence batch, as ``nn.LSTM`` / ``nn.GRU`` do.

        Args:
            input: (T, B, C), or (B, T, C) with ``batch_first``, or unbatched (T, C), or a
                ``PackedSequence`` with data (N, C).
            hx: initial state(s), h (L*D, B, P|H) and for the LSTM c (L*D, B, H) ((L*D, .)
                unbatched; D = 2 when bidirectional; P = proj_size), in the batch order of
                ``input`` (for a packed batch: the order before sorting); zeros when None.
        Returns:
            (output, h_n) for the GRU, (output, (h_n, c_n)) for the LSTM. output has the
            input's layout with D*P|H features (a ``PackedSequence`` for a packed input); h_n
            and c_n hold each sequence's state after its own last step (the reverse
            direction's after step 0), layer by layer, forward before reverse.
        Raises:
            ValueError: wrong input rank, feature size or state shape, or a sequence of length 0.
        """
        cfg = self.config
        packed = isinstance(input, PackedSequence)
        if packed:
            x, bs, sorted_idx, unsorted_idx = input
            batch_sizes = bs.tolist()
            batch, unbatched = batch_sizes[0], False
        else:
            if input.dim() not in (2, 3):
                raise ValueError(
                    f"{type(self).__name__}: input must be 3-D (batched) or 2-D (unbatched), "
                    f"got shape {tuple(input.shape)}"
                )
            unbatched = input.dim() == 2
            x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if cfg.batch_first else input)  # (T, B, C)
            batch = x.shape[1]
            if x.shape[0] == 0:
                raise ValueError(f"{type(self).__name__}: the input has no time steps (T = 0); torch refuses it too")
        if x.shape[-1] != cfg.input_size:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[-1]} features per step, input_size is {cfg.input_size}"
            )
        states = self._initial(hx, batch, unbatched, x)
        if packed and sorted_idx is not None:
            states = tuple(s.index_select(1, sorted_idx) for s in states)  # caller's order -> sorted
        finals, layer_in = [], x
        for k in range(cfg.num_layers):
            outs = []
            for d in range(cfg.directions):
                w_ih, w_hh, b_ih, b_hh = self.layer_weights(k, reverse=d == 1)
                w_hr = getattr(self, f"weight_hr_l{k}{'_reverse' if d else ''}", None)
                xw = F.linear(layer_in, w_ih, b_ih)  # all steps at once: (T, B, G*H) or (N, G*H)
                state = tuple(s[k * cfg.directions + d] for s in states)
                if packed:
                    run = self._run_packed_reverse if d else self._run_packed
                    out, state = run(xw, batch_sizes, state, w_hh, b_hh, w_hr)
                elif d:
                    out, state = self._run_padded(xw.flip(0), state, w_hh, b_hh, w_hr)  # last step first
                    out = out.flip(0)  # (T, B, P|H) back in time order
                else:
                    out, state = self._run_padded(xw, state, w_hh, b_hh, w_hr)
                finals.append(state)
                outs.append(out)
            out = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]  # (T, B, D*(P|H)) or (N, .)
            layer_in = F.dropout(out, cfg.dropout, self.training) if cfg.dropout and k < cfg.num_layers - 1 else out
        h_n = tuple(torch.stack([f[i] for f in finals]) for i in range(self.N_STATE))  # each (L*D, B, .)
        if packed:
            if unsorted_idx is not None:
                h_n = tuple(s.index_select(1, unsorted_idx) for s in h_n)  # sorted -> caller's order
            return PackedSequence(out, bs, sorted_idx, unsorted_idx), self._join_hx(h_n)
        if unbatched:
            return out.squeeze(1), self._join_hx(tuple(s.squeeze(1) for s in h_n))
        return (out.transpose(0, 1) if cfg.batch_first else out), self._join_hx(h_n)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self.config).items())


class LSTM(_Recurrent):
    """Multi-layer LSTM written from its equations; same parameters and call as ``nn.LSTM``.

    ``hx`` is a pair ``(h_0, c_0)``, each (L, B, H); the result is
    ``(output, (h_n, c_n))``. See the module docstring for the equations and shapes.
    """

    GATES, N_STATE, TORCH = 4, 2, nn.LSTM

    def _split_hx(self, hx):
        if hx is None:
            return None
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("LSTM: hx must be a pair (h_0, c_0) of (num_layers, batch, hidden) tensors")
        return tuple(hx)

    def _join_hx(self, states):
        return states

    def cell(self, xw, state, w_hh, b_hh):
        h, c = state  # (b, H) each
        gates = xw + F.linear(h, w_hh, b_hh)  # (b, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # torch's order: input, forget, cell, output
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class GRU(_Recurrent):
    """Multi-layer GRU written from its equations; same parameters and call as ``nn.GRU``.

    ``hx`` is h_0 (L, B, H); the result is ``(output, h_n)``. r is applied to
    ``W_hn h + b_hn`` after the matmul, as torch does (see the module docstring).
    """

    GATES, N_STATE, TORCH = 3, 1, nn.GRU

    def cell(self, xw, state, w_hh, b_hh):
        (h,) = state  # (b, H)
        hw = F.linear(h, w_hh, b_hh)  # (b, 3H): W_hr h + b_hr | W_hz h + b_hz | W_hn h + b_hn
        x_r, x_z, x_n = xw.chunk(3, dim=1)
        h_r, h_z, h_n = hw.chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (n + z * (h - n),)  # = (1 - z) * n + z * h


RECURRENT = {"lstm": (LSTM, nn.LSTM), "gru": (GRU, nn.GRU)}


def make_rnn(cell: str, config: RecurrentConfig, impl: str = "torch", bidirectional: bool = False) -> nn.Module:
    """An ``nn.LSTM``/``nn.GRU`` (``impl="torch"``) or this module's (``"manual"``) for ``config``.

    Both take the same call and return the same structure; ``bidirectional=True`` overrides
    the config's field. Raises ValueError for an unknown cell or impl, or proj_size on a GRU.
    """
    if cell not in RECURRENT:
        raise ValueError(f"unknown cell {cell!r}; choose from {sorted(RECURRENT)}")
    mine, theirs = RECURRENT[cell]
    if bidirectional:
        config = dataclasses.replace(config, bidirectional=True)
    if cell != "lstm" and config.proj_size:
        raise ValueError(f"proj_size={config.proj_size}: projections exist for the LSTM only, not {cell!r}")
    if impl == "torch":
        return theirs(**config.torch_kwargs(cell))
    if impl == "manual":
        return mine(config)
    raise ValueError(f"unknown impl {impl!r}; choose 'torch' or 'manual'")


def forward_backward(
    module: nn.Module,
    x: torch.Tensor,
    *,
    lengths: torch.Tensor | None = None,
    enforce_sorted: bool = True,
    hx: Any = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Outputs, final states and every gradient of one forward/backward, by name.

    Runs ``module`` (an ``nn.LSTM``/``nn.GRU`` or this module's, batch layout from its
    ``batch_first``) on ``x`` (T, B, C) / (B, T, C); with ``lengths`` (B,) the batch is
    first packed by ``pack_padded_sequence(..., enforce_sorted=enforce_sorted)`` and the
    output padded back (zeros past each length). The loss is a fixed random projection of
    every output (weights drawn from ``seed``), so each gradient sees every output element.

    Returns a dict: ``output``, ``h_n`` (and ``c_n`` for the LSTM), then ``grad input``,
    ``grad h_0`` / ``grad c_0`` when ``hx`` was given, and ``grad <parameter name>`` for
    every parameter. Neither ``x`` nor ``hx`` is modified, and no ``.grad`` is touched.
    """
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    batch_first = module.batch_first if hasattr(module, "batch_first") else module.config.batch_first
    x = x.detach().clone().requires_grad_(True)
    states = () if hx is None else ((hx,) if isinstance(hx, torch.Tensor) else tuple(hx))
    states = tuple(s.detach().clone().requires_grad_(True) for s in states)
    given = None if hx is None else (states[0] if isinstance(hx, torch.Tensor) else states)
    if lengths is not None:
        packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
        out, h = module(packed, given)
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    else:
        out, h = module(x, given)
    finals = (h,) if isinstance(h, torch.Tensor) else tuple(h)
    result = {"output": out, "h_n": finals[0]}
    if len(finals) == 2:
        result["c_n"] = finals[1]
    g = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype).to(t.device)).sum() for t in result.values())
    params = dict(module.named_parameters())
    wrt = [x, *states, *params.values()]
    # a parameter the module never used gets a zero gradient (a wrong one, if torch's is not)
    grads = [
        torch.zeros_like(w) if gr is None else gr
        for w, gr in zip(wrt, torch.autograd.grad(loss, wrt, allow_unused=True))
    ]
    names = ["grad input"] + [f"grad {n}_0" for n in ("h", "c")[: len(states)]] + [f"grad {n}" for n in params]
    result = {k: v.detach() for k, v in result.items()}
    result.update(zip(names, grads))
    return result


@dataclasses.dataclass(frozen=True)
class RecurrentCase:
    """One equivalence case: a torch LSTM/GRU, a batch and (optionally) initial states."""

    seq_len: int
    """T: steps of the padded batch (the longest sequence when packed)"""
    batch: int
    """B: sequences"""
    input_size: int
    """C: input features"""
    hidden_size: int
    """H: hidden features"""
    num_layers: int
    """L: stacked layers"""
    batch_first: bool = False
    """(B, T, C) layout instead of (T, B, C)"""
    packed: str = "no"
    """"no"; "sorted" (lengths descending, enforce_sorted=True); "unsorted" (enforce_sorted=False)"""
    initial_state: bool = False
    """pass random h_0 (and c_0) instead of zeros"""
    bidirectional: bool = False
    """a second, reversed direction per layer"""
    proj_size: int = 0
    """P: LSTM projection width (0 = none)"""

    def label(self) -> str:
        extra = (",bidirectional" if self.bidirectional else "") + (f",P={self.proj_size}" if self.proj_size else "")
        return (
            f"T={self.seq_len},B={self.batch},C={self.input_size},H={self.hidden_size},L={self.num_layers},"
            f"batch_first={self.batch_first},packed={self.packed},h0={self.initial_state}{extra}"
        )

    def inputs(self, cell: str, device, dtype, seed: int) -> tuple:
        """(x, lengths or None, enforce_sorted, hx or None, torch module), all seeded."""
        g = torch.Generator().manual_seed(seed)
        torch_cls = RECURRENT[cell][1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            extra = {"proj_size": self.proj_size} if self.proj_size else {}
            module = torch_cls(
                self.input_size,
                self.hidden_size,
                self.num_layers,
                batch_first=self.batch_first,
                bidirectional=self.bidirectional,
                **extra,
            ).to(device, dtype)
        shape = (self.batch, self.seq_len) if self.batch_first else (self.seq_len, self.batch)
        x = torch.randn(*shape, self.input_size, generator=g, dtype=dtype).to(device)
        lengths = None
        if self.packed != "no":
            # lengths 1..T with the full length present; shuffled unless "sorted"
            lengths = torch.randint(1, self.seq_len + 1, (self.batch,), generator=g)
            lengths[0] = self.seq_len
            lengths = lengths.sort(descending=True).values
            if self.packed == "unsorted":
                lengths = lengths[torch.randperm(self.batch, generator=g)]
        hx = None
        if self.initial_state:
            ld = self.num_layers * (2 if self.bidirectional else 1)
            widths = (self.proj_size or self.hidden_size, self.hidden_size)[: RECURRENT[cell][0].N_STATE]
            st = [torch.randn(ld, self.batch, n, generator=g, dtype=dtype).to(device) for n in widths]
            hx = st[0] if len(st) == 1 else tuple(st)
        return x, lengths, self.packed != "unsorted", hx, module
