"""AWD-LSTM language model (Merity, Keskar and Socher, "Regularizing and Optimizing LSTM
Language Models", 2017), time-major: tokens ``(seq_len, batch)``.

Its regularisation, all active in training mode only:

- embedding dropout: whole rows of the embedding matrix (words) dropped, the rest rescaled;
- variational ("locked") dropout: one mask per sequence, the same at every time step, on the
  LSTM's input (the word vectors), between LSTM layers and on the last layer's output;
- weight drop (DropConnect): the hidden-to-hidden matrix of every LSTM layer is dropped
  elementwise, one mask per forward pass, so the recurrence keeps the same mask over time;
- tied weights: the decoder's weight matrix is the embedding matrix (the last LSTM layer then
  has the embedding's width).

Weight drop without the old ``flatten_parameters``/``_parameters`` surgery: each layer is an
ordinary ``nn.LSTM`` that owns its raw weights as plain parameters (so optimisers, state
dicts and gradient averaging see nothing unusual), and in training its forward runs through
``torch.func.functional_call`` with the dropped hidden-to-hidden matrix in place of the raw
one. The dropped matrix is a differentiable function of the raw weight, so gradients reach
it; the fused LSTM kernels (cuDNN on a GPU) are still used.

Defaults are the paper's Wikitext-2 settings: embedding 400, hidden 1,150, three layers,
dropout 0.4 on the output, 0.3 between layers, 0.65 on the input, 0.1 on the embedding and
0.5 weight drop (the awd-lstm-lm flags ``--dropout``, ``--dropouth``, ``--dropouti``,
``--dropoute``, ``--wdrop``). The activation regularisers of the paper (AR, TAR) belong to the
loss and are not part of this module.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

__all__ = [
    "AWDLSTM",
    "Hidden",
    "LockedDropout",
    "StatefulLanguageModel",
    "WeightDropLSTM",
    "drop_connect",
    "embedding_dropout",
    "lm_loss",
    "repackage_hidden",
]

Hidden = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (h, c), each (1, batch, size)

# cuDNN copies weights that are not in its flat buffer (the dropped matrix) and says so.
_NOT_FLAT = "RNN module weights are not part of single contiguous chunk of memory"


def _check_p(p: float, name: str) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), not {p}")
    return p


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence: ``(seq, batch, features)``, the same at every step."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = _check_p(p, "p")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.p:
            return x
        mask = x.new_empty((1, x.size(1), x.size(2))).bernoulli_(1 - self.p)
        return x * mask.div_(1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def embedding_dropout(
    embedding: nn.Embedding, tokens: torch.Tensor, p: float, training: bool = True
) -> torch.Tensor:
    """Look ``tokens`` up in ``embedding`` with whole words (rows) dropped with probability
    ``p`` and the kept ones scaled by ``1 / (1 - p)``: a word is dropped everywhere it occurs."""
    weight = embedding.weight
    if training and p:
        mask = weight.new_empty((weight.size(0), 1)).bernoulli_(1 - p).div_(1 - p)
        weight = weight * mask
    return F.embedding(tokens, weight, embedding.padding_idx)


def drop_connect(weight: torch.Tensor, p: float) -> torch.Tensor:
    """``weight`` with each entry zeroed with probability ``p`` and the rest scaled by
    ``1 / (1 - p)``: ``F.dropout``'s result, with a mask drawn by ``rand`` (on the CPU about
    three times faster than the Bernoulli sampler that dropout uses)."""
    keep = torch.rand_like(weight) >= p
    return weight * keep.to(weight.dtype).div_(1 - p)


class WeightDropLSTM(nn.Module):
    """One LSTM layer with DropConnect (probability ``weight_drop``) on its hidden-to-hidden
    matrix in training mode. The raw matrix is ``self.lstm.weight_hh_l0``."""

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.5) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.weight_drop = _check_p(weight_drop, "weight_drop")

    def forward(
        self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if not self.training or not self.weight_drop:
            return self.lstm(x, hidden)
        dropped = drop_connect(self.lstm.weight_hh_l0, self.weight_drop)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NOT_FLAT)
            return functional_call(self.lstm, {"weight_hh_l0": dropped}, (x, hidden))

    def extra_repr(self) -> str:
        return f"weight_drop={self.weight_drop}"


class AWDLSTM(nn.Module):
    """The AWD-LSTM: ``forward(tokens, hidden)`` with ``tokens`` of shape ``(seq, batch)`` gives
    logits ``(seq, batch, vocab_size)`` and the new hidden state (see ``init_hidden``)."""

    def __init__(
        self,
        vocab_size: int,
        emb_size: int = 400,
        hidden_size: int = 1150,
        num_layers: int = 3,
        *,
        dropout_output: float = 0.4,
        dropout_hidden: float = 0.3,
        dropout_input: float = 0.65,
        dropout_embedding: float = 0.1,
        weight_drop: float = 0.5,
        tie_weights: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError("an AWD-LSTM needs at least one layer")
        self.vocab_size, self.emb_size, self.num_layers = vocab_size, emb_size, num_layers
        self.dropout_embedding = _check_p(dropout_embedding, "dropout_embedding")
        self.encoder = nn.Embedding(vocab_size, emb_size)
        self.drop_input = LockedDropout(dropout_input)
        self.drop_hidden = LockedDropout(dropout_hidden)
        self.drop_output = LockedDropout(dropout_output)
        sizes = [emb_size] + [hidden_size] * (num_layers - 1)
        sizes.append(emb_size if tie_weights else hidden_size)
        self.rnns = nn.ModuleList(
            WeightDropLSTM(sizes[i], sizes[i + 1], weight_drop) for i in range(num_layers)
        )
        self.decoder = nn.Linear(sizes[-1], vocab_size)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.encoder.weight

    def forward(
        self, tokens: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        if hidden is None:
            hidden = self.init_hidden(tokens.size(1))
        x = embedding_dropout(self.encoder, tokens, self.dropout_embedding, self.training)
        x = self.drop_input(x)
        new_hidden: Hidden = []
        for index, rnn in enumerate(self.rnns):
            x, state = rnn(x, hidden[index])
            new_hidden.append(state)
            if index < self.num_layers - 1:
                x = self.drop_hidden(x)
        return self.decoder(self.drop_output(x)), new_hidden

    def init_hidden(self, batch_size: int) -> Hidden:
        """Zero states for every layer, on the model's device and in its dtype."""
        weight = self.encoder.weight
        return [
            (
                weight.new_zeros(1, batch_size, rnn.lstm.hidden_size),
                weight.new_zeros(1, batch_size, rnn.lstm.hidden_size),
            )
            for rnn in self.rnns
        ]


def repackage_hidden(hidden: Any) -> Any:
    """The hidden state detached from its history (truncated back-propagation through time);
    tensors, tuples and lists of them, nested."""
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    if isinstance(hidden, tuple | list):
        return type(hidden)(repackage_hidden(h) for h in hidden)
    raise TypeError(f"not a hidden state: {type(hidden).__name__}")


class StatefulLanguageModel(nn.Module):
    """An ``AWDLSTM`` that carries its hidden state from one batch to the next (detached), for
    a training loop that calls ``model(tokens)`` only: batches must be consecutive slices of
    the same ``batch`` streams. The state starts at zero and is dropped on ``train()`` and
    ``eval()`` (each epoch and each validation pass starts afresh), on ``reset()``, and when
    the batch size changes. ``forward`` returns the logits ``(seq, batch, vocab)``."""

    def __init__(self, model: AWDLSTM) -> None:
        super().__init__()
        self.model = model
        self.hidden: Hidden | None = None

    def reset(self) -> None:
        self.hidden = None

    def train(self, mode: bool = True) -> StatefulLanguageModel:
        self.reset()
        return super().train(mode)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden
        if (
            hidden is None
            or hidden[0][0].size(1) != tokens.size(1)
            or hidden[0][0].device != self.model.encoder.weight.device
        ):
            hidden = None
        logits, new_hidden = self.model(tokens, hidden)
        self.hidden = repackage_hidden(new_hidden)
        return logits


def lm_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per token: logits ``(..., vocab)`` against token ids ``(...)``."""
    return F.cross_entropy(output.reshape(-1, output.size(-1)), target.reshape(-1))
