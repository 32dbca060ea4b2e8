"""Datasets of the benchmarks: download (verified, cached), parsing, partitioning, and
synthetic stand-ins.

``SOURCES`` lists the files each dataset needs; ``fetch`` gets one into a data folder (from a
mirror when given ``base_url``) and ``describe`` records what was used.
"""

from __future__ import annotations

from mlbench_core.datasets import cifar10, epsilon, wikitext2
from mlbench_core.datasets.batches import Batches, Transform
from mlbench_core.datasets.bptt import BpttBatches
from mlbench_core.datasets.cifar10 import Cifar10, augment, load_cifar10, normalize
from mlbench_core.datasets.download import (
    DatasetError,
    Source,
    cached_digest,
    describe,
    fetch,
    file_digest,
)
from mlbench_core.datasets.epsilon import load_epsilon, load_libsvm
from mlbench_core.datasets.locate import obtain, pinned
from mlbench_core.datasets.partition import contiguous, partition, shard
from mlbench_core.datasets.synthetic import (
    SyntheticBatches,
    synthetic_cifar10,
    synthetic_epsilon,
    synthetic_tokens,
    synthetic_wikitext2,
)
from mlbench_core.datasets.wikitext2 import Corpus, Dictionary, batchify, get_batch, load_wikitext2

__all__ = [
    "SOURCES",
    "Batches",
    "BpttBatches",
    "Cifar10",
    "Corpus",
    "DatasetError",
    "Dictionary",
    "Source",
    "SyntheticBatches",
    "Transform",
    "augment",
    "batchify",
    "cached_digest",
    "contiguous",
    "describe",
    "fetch",
    "file_digest",
    "get_batch",
    "load_cifar10",
    "load_epsilon",
    "load_libsvm",
    "load_wikitext2",
    "normalize",
    "obtain",
    "partition",
    "pinned",
    "shard",
    "synthetic_cifar10",
    "synthetic_epsilon",
    "synthetic_tokens",
    "synthetic_wikitext2",
]

# The files of each dataset, by the dataset's name in the benchmark registry.
SOURCES: dict[str, list[Source]] = {
    "cifar10": [cifar10.SOURCE],
    "epsilon": [epsilon.TRAIN, epsilon.TEST],
    "wikitext2": [wikitext2.SOURCE],
}
