"""Benchmark 3a: AWD-LSTM language model on Wikitext-2 (the official archive, or synthetic)."""

from __future__ import annotations

from typing import Any

import torch

from mlbench_core.benchmarks import common
from mlbench_core.benchmarks.registry import BenchmarkSpec
from mlbench_core.datasets import BpttBatches, contiguous, synthetic_wikitext2, wikitext2
from mlbench_core.engine.metrics import perplexity
from mlbench_core.engine.trainer import Task, TaskContext
from mlbench_core.models.lstm import AWDLSTM, StatefulLanguageModel, lm_loss

__all__ = ["build", "load"]

EVAL_STREAMS = 10  # the AWD-LSTM reference's evaluation batch size


def load(ctx: TaskContext) -> tuple[wikitext2.Corpus, dict[str, Any]]:
    """The corpus and where it came from."""
    if ctx.synthetic:
        return synthetic_wikitext2(ctx.seed), {"source": "synthetic", "dataset": "wikitext2"}
    path, record = common.dataset_file(ctx, wikitext2.SOURCE)
    corpus = wikitext2.read_wikitext2(path)
    return corpus, {"source": "file", "dataset": "wikitext2", "files": [record]}


def build(ctx: TaskContext, spec: BenchmarkSpec) -> Task:
    """AWD-LSTM for rank ``ctx.rank``: a contiguous 1/world_size of the training tokens cut
    into ``batch_size`` streams, and a contiguous part of the validation tokens."""
    hp = common.settings(spec, ctx)
    corpus, source = load(ctx)
    bptt = int(hp["bptt"])
    train_tokens = corpus.train[contiguous(len(corpus.train), ctx.rank, ctx.world_size)]
    val_tokens = corpus.valid[contiguous(len(corpus.valid), ctx.rank, ctx.world_size)]
    train_loader = BpttBatches(train_tokens, int(hp["batch_size"]), bptt)
    val_loader = BpttBatches(val_tokens, min(EVAL_STREAMS, max(1, len(val_tokens) // 2)), bptt)
    torch.manual_seed(ctx.seed)
    net = AWDLSTM(
        len(corpus.dictionary),
        emb_size=int(hp["emb"]),
        hidden_size=int(hp["hidden"]),
        num_layers=int(hp["layers"]),
    )
    model = StatefulLanguageModel(net).to(ctx.device)
    optimizer = common.optimizer(spec, model.parameters(), hp)
    return Task(
        model=model,
        train_loader=train_loader,
        val_loader=val_loader,
        optimizer=optimizer,
        loss_fn=lm_loss,
        metric=perplexity(),
        goal=common.goal(spec, ctx),
        epochs=common.epochs(spec, ctx),
        scheduler=common.scheduler(spec, optimizer, len(train_loader), ctx.world_size),
        aggregation=spec.aggregation,
        clip_grad_norm=float(hp["clip"]),
        hyperparameters={**hp, "vocabulary": len(corpus.dictionary)},
        data={**source, "train_tokens_per_worker": len(train_tokens)},
    )
