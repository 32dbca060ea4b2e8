"""ResNets for CIFAR-10: architecture, parameter count, option-A shortcuts, He init, training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mlbench_core.models.resnet import BasicBlock, CifarResNet, cifar_resnet, resnet20


def expected_parameters(blocks_per_stage: int, num_classes: int = 10) -> int:
    """Counted by hand: bias-free 3x3 convolutions, two parameters per batch-norm channel,
    parameter-free (option A) shortcuts, a 64 -> classes linear layer."""
    total = 3 * 16 * 9 + 2 * 16  # stem convolution and its batch norm
    in_channels = 16
    for channels in (16, 32, 64):
        for _ in range(blocks_per_stage):
            total += in_channels * channels * 9 + channels * channels * 9 + 2 * 2 * channels
            in_channels = channels
    return total + 64 * num_classes + num_classes


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet20_has_the_papers_0_27m_parameters():
    model = resnet20()
    assert count(model) == expected_parameters(3) == 269_722
    assert round(count(model) / 1e6, 2) == 0.27  # He et al., Table 6


@pytest.mark.parametrize(("depth", "paper_millions"), [(32, 0.46), (44, 0.66), (56, 0.85)])
def test_deeper_cifar_resnets_match_the_paper(depth, paper_millions):
    model = cifar_resnet(depth)
    n = (depth - 2) // 6
    assert count(model) == expected_parameters(n)
    assert round(count(model) / 1e6, 2) == paper_millions
    layers = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())
    assert layers == depth


def test_layers_and_output_shape():
    model = resnet20()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and all(c.kernel_size == (3, 3) and c.bias is None for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 19
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert resnet20(num_classes=100).eval()(torch.randn(3, 3, 32, 32)).shape == (3, 100)


def test_feature_maps_per_stage():
    model = resnet20().eval()
    shapes = []
    for stage in (model.stage1, model.stage2, model.stage3):
        stage.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert shapes == [(1, 16, 32, 32), (1, 32, 16, 16), (1, 64, 8, 8)]


@pytest.mark.parametrize("depth", [0, 2, 19, 21, 27])
def test_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError):
        cifar_resnet(depth)


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
    block = BasicBlock(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    short = block.shortcut(x)
    assert short.shape == (2, 32, 4, 4)
    assert torch.equal(short[:, 8:24], x[:, :, ::2, ::2])
    assert not short[:, :8].any() and not short[:, 24:].any()
    assert torch.equal(BasicBlock(16, 16).shortcut(x), x)
    assert not [n for n, _ in block.named_parameters() if not n.startswith(("conv", "bn"))]


def test_he_initialisation():
    model = resnet20()
    conv = model.stage3[1].conv1  # 64 -> 64, 3x3: fan-out 576
    std = conv.weight.std().item()
    assert math.isclose(std, math.sqrt(2 / (64 * 9)), rel_tol=0.05)
    bn = model.stage2[0].bn1
    assert torch.equal(bn.weight, torch.ones(32)) and torch.equal(bn.bias, torch.zeros(32))


def test_sgd_steps_reduce_the_loss_on_a_batch():
    torch.manual_seed(0)
    model = CifarResNet(1)  # ResNet-8: the same building blocks, faster
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_resnet20_trains_a_step():
    torch.manual_seed(1)
    model = resnet20()
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
