"""The AWD-LSTM: shapes, its four regularisers, tied weights, state carrying, training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlbench_core.models.lstm import (
    AWDLSTM,
    LockedDropout,
    StatefulLanguageModel,
    WeightDropLSTM,
    drop_connect,
    embedding_dropout,
    lm_loss,
    repackage_hidden,
)

VOCAB = 30


def small(**kwargs) -> AWDLSTM:
    return AWDLSTM(VOCAB, emb_size=8, hidden_size=12, num_layers=3, **kwargs)


def test_defaults_are_the_papers_wikitext2_settings():
    model = AWDLSTM(100)
    assert model.encoder.embedding_dim == 400
    assert [r.lstm.hidden_size for r in model.rnns] == [1150, 1150, 400]
    assert [r.lstm.input_size for r in model.rnns] == [400, 1150, 1150]
    assert [r.weight_drop for r in model.rnns] == [0.5] * 3
    assert model.drop_output.p == 0.4
    assert model.drop_hidden.p == 0.3
    assert model.drop_input.p == 0.65
    assert model.dropout_embedding == 0.1
    assert model.decoder.weight is model.encoder.weight


def test_forward_shapes_and_hidden_state():
    torch.manual_seed(0)
    model = small()
    tokens = torch.randint(0, VOCAB, (7, 4))
    logits, hidden = model(tokens)
    assert logits.shape == (7, 4, VOCAB)
    assert [tuple(h.shape) for h, _ in hidden] == [(1, 4, 12), (1, 4, 12), (1, 4, 8)]
    assert [tuple(c.shape) for _, c in hidden] == [(1, 4, 12), (1, 4, 12), (1, 4, 8)]
    zeros = model.init_hidden(4)
    assert all(not h.any() and not c.any() for h, c in zeros)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(tokens)[0], model(tokens, zeros)[0])


def test_tied_weights_share_storage_and_count_once():
    model = small()
    assert model.decoder.weight is model.encoder.weight
    assert model.decoder.weight.data_ptr() == model.encoder.weight.data_ptr()
    names = [n for n, _ in model.named_parameters()]
    assert "decoder.weight" not in names and "encoder.weight" in names
    untied = small(tie_weights=False)
    assert untied.decoder.weight is not untied.encoder.weight
    assert untied.rnns[-1].lstm.hidden_size == 12 and untied.decoder.in_features == 12
    with torch.no_grad():
        model.encoder.weight[3].fill_(1.5)
    assert torch.equal(model.decoder.weight[3], torch.full((8,), 1.5))


def test_weight_drop_is_active_in_training_only():
    torch.manual_seed(0)
    layer = WeightDropLSTM(4, 6, weight_drop=0.5)
    x = torch.randn(5, 3, 4)
    plain, _ = layer.lstm(x)
    layer.train()
    first, _ = layer(x)
    second, _ = layer(x)
    assert not torch.allclose(first, plain) and not torch.allclose(first, second)
    layer.eval()
    assert torch.equal(layer(x)[0], plain)
    # The raw weight is untouched, still the module's parameter, and used again in eval.
    assert isinstance(layer.lstm.weight_hh_l0, nn.Parameter)
    assert torch.equal(layer.lstm(x)[0], plain)
    assert [n for n, _ in layer.named_parameters()] == [
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "lstm.bias_ih_l0",
        "lstm.bias_hh_l0",
    ]


def test_dropped_weights_are_the_raw_ones_masked_and_rescaled():
    torch.manual_seed(1)
    layer = WeightDropLSTM(3, 5, weight_drop=0.5)
    x = torch.randn(4, 2, 3)
    torch.manual_seed(7)
    out, _ = layer(x)
    torch.manual_seed(7)
    dropped = drop_connect(layer.lstm.weight_hh_l0, 0.5)
    expected, _ = torch.func.functional_call(layer.lstm, {"weight_hh_l0": dropped}, (x,))
    assert torch.equal(out, expected)
    kept = dropped != 0
    assert torch.allclose(dropped[kept], 2 * layer.lstm.weight_hh_l0[kept])


def test_drop_connect_drops_entries_with_probability_p():
    torch.manual_seed(2)
    weight = torch.randn(200, 100)
    dropped = drop_connect(weight, 0.3)
    kept = dropped != 0
    assert 0.28 < 1 - float(kept.float().mean()) < 0.32
    assert torch.allclose(dropped[kept], weight[kept] / 0.7)


def test_gradients_reach_the_raw_hidden_to_hidden_weights():
    torch.manual_seed(0)
    model = small()
    tokens = torch.randint(0, VOCAB, (6, 3))
    model.train()
    lm_loss(model(tokens)[0][:-1], tokens[1:]).backward()
    for rnn in model.rnns:
        grad = rnn.lstm.weight_hh_l0.grad
        assert grad is not None and grad.abs().sum() > 0
        # DropConnect: the dropped entries got no gradient
        assert 0.3 < float((grad == 0).float().mean()) < 0.7
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    model.eval()
    lm_loss(model(tokens)[0][:-1], tokens[1:]).backward()
    assert float((model.rnns[0].lstm.weight_hh_l0.grad == 0).float().mean()) < 0.05


def test_locked_dropout_uses_one_mask_over_time():
    drop = LockedDropout(0.5)
    x = torch.ones(6, 4, 10)
    out = drop(x)
    assert torch.equal(out, out[:1].expand_as(out))
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError):
        LockedDropout(1.0)


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(3)
    embedding = nn.Embedding(50, 6)
    tokens = torch.arange(50).repeat(2).view(2, 50)  # every word twice
    out = embedding_dropout(embedding, tokens, 0.5)
    dropped = ~out[0].any(dim=1)
    assert 5 < int(dropped.sum()) < 45
    assert torch.equal(out[0], out[1])  # a word is dropped wherever it occurs
    assert torch.allclose(out[0][~dropped], 2 * embedding.weight[~dropped])
    plain = embedding_dropout(embedding, tokens, 0.5, training=False)
    assert torch.equal(plain, embedding(tokens))


def test_dropout_is_off_in_eval_mode():
    torch.manual_seed(0)
    model = small().eval()
    tokens = torch.randint(0, VOCAB, (5, 2))
    with torch.no_grad():
        assert torch.equal(model(tokens)[0], model(tokens)[0])
    model.train()
    assert not torch.equal(model(tokens)[0], model(tokens)[0])


def test_repackage_hidden_detaches_and_keeps_the_structure():
    model = small()
    _, hidden = model(torch.randint(0, VOCAB, (4, 2)))
    assert hidden[0][0].requires_grad
    detached = repackage_hidden(hidden)
    assert isinstance(detached, list) and isinstance(detached[0], tuple)
    assert all(not t.requires_grad for pair in detached for t in pair)
    assert torch.equal(detached[2][1], hidden[2][1])
    with pytest.raises(TypeError):
        repackage_hidden([1.0])


def test_stateful_model_carries_the_state_and_resets_on_mode_changes():
    torch.manual_seed(0)
    model = StatefulLanguageModel(small()).eval()
    a, b = torch.randint(0, VOCAB, (5, 3)), torch.randint(0, VOCAB, (5, 3))
    with torch.no_grad():
        fresh_b = model.model(b)[0]
        model(a)
        assert model.hidden is not None
        carried_b = model(b)
        assert carried_b.shape == (5, 3, VOCAB) and not torch.allclose(carried_b, fresh_b)
        model.eval()  # a new validation pass starts from zero
        assert model.hidden is None
        assert torch.equal(model(b), fresh_b)
        assert model(torch.randint(0, VOCAB, (5, 2))).shape == (5, 2, VOCAB)  # new batch size
    model.train()
    assert model.hidden is None
    out = model(a)
    assert not model.hidden[0][0].requires_grad and out.requires_grad


def test_loss_decreases_on_a_repeated_sequence():
    torch.manual_seed(0)
    vocab = 10
    stream = torch.arange(vocab).repeat(5)  # 0 1 2 ... 9 0 1 ...
    batch = torch.stack([stream, stream.roll(3)], dim=1)  # (50, 2)
    x, y = batch[:-1], batch[1:]
    model = AWDLSTM(
        vocab,
        emb_size=16,
        hidden_size=24,
        num_layers=2,
        dropout_output=0.1,
        dropout_hidden=0.1,
        dropout_input=0.1,
        dropout_embedding=0.05,
        weight_drop=0.2,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(lm_loss(model(x)[0], y))

    before = eval_loss()
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        lm_loss(model(x)[0], y).backward()
        optimizer.step()
    assert eval_loss() < 0.3 * before


def test_lm_loss_is_the_mean_per_token_cross_entropy():
    logits = torch.randn(4, 3, VOCAB)
    target = torch.randint(0, VOCAB, (4, 3))
    expected = nn.functional.cross_entropy(logits.view(12, VOCAB), target.view(12))
    assert torch.equal(lm_loss(logits, target), expected)
