"""Logistic regression and its L2-regularised loss."""

from __future__ import annotations

import math

import pytest
import torch

from mlbench_core.models.logistic import (
    DEFAULT_WEIGHT_DECAY,
    LogisticRegression,
    l2_logistic_loss,
)


def test_one_linear_layer_from_2000_features_to_one_logit():
    model = LogisticRegression()
    assert sum(p.numel() for p in model.parameters()) == 2001
    assert model(torch.randn(5, 2000)).shape == (5,)


def test_default_lambda_is_one_over_epsilons_training_set():
    assert DEFAULT_WEIGHT_DECAY == pytest.approx(2.5e-6)


def small_model() -> LogisticRegression:
    model = LogisticRegression(3)
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        model.linear.bias.fill_(0.25)
    return model


def test_loss_is_mean_bce_plus_half_lambda_times_squared_weights_by_hand():
    model = small_model()
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])
    y = torch.tensor([1, 0])
    # logits: 1 + 1 + 0.25 = 2.25 and -2 - 0.5 + 0.25 = -2.25
    bce = (math.log(1 + math.exp(-2.25)) + math.log(1 + math.exp(-2.25))) / 2
    penalty = 0.1 / 2 * (1 + 4 + 0.25)  # the bias is not penalised
    loss = l2_logistic_loss(model, weight_decay=0.1)
    assert loss(model(x), y).item() == pytest.approx(bce + penalty, rel=1e-6)
    assert l2_logistic_loss(model, 0.0)(model(x), y).item() == pytest.approx(bce, rel=1e-6)
    # {-1, +1} labels mean the same as {0, 1}
    assert loss(model(x), torch.tensor([1.0, -1.0])).item() == pytest.approx(bce + penalty)


def test_penalty_gradient_is_lambda_w_and_follows_the_training():
    model = small_model()
    loss = l2_logistic_loss(model, weight_decay=0.1)
    x = torch.zeros(4, 3)  # the data part of the weight gradient is zero
    loss(model(x), torch.ones(4)).backward()
    assert torch.allclose(model.linear.weight.grad, 0.1 * model.linear.weight)
    with torch.no_grad():
        model.linear.weight.mul_(2)  # an optimiser step in place: the penalty sees it
    value = loss(model(x), torch.ones(4)).item()
    assert value == pytest.approx(math.log(1 + math.exp(-0.25)) + 0.05 * 4 * 5.25, rel=1e-6)


def test_negative_lambda_is_refused():
    with pytest.raises(ValueError):
        l2_logistic_loss(LogisticRegression(3), -1.0)


def test_sgd_reduces_the_regularised_loss():
    torch.manual_seed(0)
    w_true = torch.randn(20)
    x = torch.randn(256, 20)
    y = (x @ w_true > 0).long()
    model = LogisticRegression(20)
    loss = l2_logistic_loss(model, 1e-3)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    first = loss(model(x), y).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss(model(x), y).backward()
        optimizer.step()
    assert loss(model(x), y).item() < 0.5 * first
