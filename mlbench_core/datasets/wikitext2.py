"""WikiText-2 (word level) for language modelling, read from the official zip.

The zip holds ``wikitext-2/wiki.{train,valid,test}.tokens``: text already tokenised, with
rare words replaced by ``<unk>``. As in the AWD-LSTM reference, each line is split on
whitespace and ends with an ``<eos>`` token; the vocabulary is the training split's words in
order of first appearance (33,278 words for the real set; the other splits add none).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mlbench_core.datasets.download import DatasetError, Source, fetch

__all__ = [
    "EOS",
    "SOURCE",
    "UNK",
    "Corpus",
    "Dictionary",
    "batchify",
    "build_corpus",
    "get_batch",
    "load_wikitext2",
    "read_wikitext2",
    "tokenize",
]

SOURCE = Source(
    filename="wikitext-2-v1.zip",
    url="https://wikitext.smerity.com/wikitext-2-v1.zip",
    algorithm="md5",
    # Not pinned: md5 542ccefacc6c27f945fb54453812b3cd is the widely pinned digest of this zip
    # at its original (now gone) Salesforce S3 location; that the author's mirror above serves
    # the same bytes is likely but unchecked. Without a digest the sha256 is still recorded.
    digest=None,
)
FOLDER = "wikitext-2"
SPLITS = ("train", "valid", "test")
EOS, UNK = "<eos>", "<unk>"


@dataclass
class Dictionary:
    """Word → index (``word2idx``) and index → word (``idx2word``)."""

    word2idx: dict[str, int] = field(default_factory=dict)
    idx2word: list[str] = field(default_factory=list)

    def add_word(self, word: str) -> int:
        """The index of ``word``, added at the end if new."""
        index = self.word2idx.get(word)
        if index is None:
            index = self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return index

    def __len__(self) -> int:
        return len(self.idx2word)


@dataclass
class Corpus:
    """The dictionary and each split as a 1-D LongTensor of word indices."""

    dictionary: Dictionary
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor


def tokenize(lines: Iterable[str]) -> list[str]:
    """The tokens of ``lines``: each line's words, then ``<eos>``."""
    tokens: list[str] = []
    for line in lines:
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


def build_corpus(train: Iterable[str], valid: Iterable[str], test: Iterable[str]) -> Corpus:
    """A corpus from the lines of each split; words of valid/test not seen in training become
    ``<unk>`` (added to the dictionary if training has none)."""
    dictionary = Dictionary()
    train_ids = torch.tensor([dictionary.add_word(w) for w in tokenize(train)], dtype=torch.long)

    def encode(lines: Iterable[str]) -> torch.Tensor:
        words = tokenize(lines)
        ids = [dictionary.word2idx.get(w, -1) for w in words]
        if -1 in ids:
            unk = dictionary.add_word(UNK)
            ids = [unk if i == -1 else i for i in ids]
        return torch.tensor(ids, dtype=torch.long)

    return Corpus(dictionary, train_ids, encode(valid), encode(test))


def read_wikitext2(archive: Path) -> Corpus:
    """The corpus in ``archive`` (the official ``wikitext-2-v1.zip``)."""
    texts: dict[str, list[str]] = {}
    try:
        with zipfile.ZipFile(archive) as z:
            for split in SPLITS:
                member = f"{FOLDER}/wiki.{split}.tokens"
                try:
                    raw = z.open(member)
                except KeyError as exc:
                    raise DatasetError(f"{archive} has no {member}") from exc
                # lines as reading the extracted file in text mode would give them
                with io.TextIOWrapper(raw, encoding="utf-8") as f:
                    texts[split] = list(f)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{archive} is not a readable WikiText-2 archive: {exc}") from exc
    return build_corpus(texts["train"], texts["valid"], texts["test"])


def load_wikitext2(
    data_dir: Path,
    *,
    base_url: str | None = None,
    progress: bool = True,
    source: Source = SOURCE,
) -> Corpus:
    """WikiText-2 from ``data_dir``, downloaded (and verified) first if need be."""
    return read_wikitext2(fetch(source, data_dir, base_url=base_url, progress=progress))


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``data`` (1-D) cut into ``batch_size`` contiguous streams, one per column:
    shape ``(len(data) // batch_size, batch_size)``, the remainder left out."""
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} is not positive")
    steps = len(data) // batch_size
    return data[: steps * batch_size].view(batch_size, steps).t().contiguous()


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``source[i : i + n]`` and their next words, flattened (``n * batch_size``), where
    ``n`` is ``bptt`` or less at the end of ``source``."""
    n = min(bptt, len(source) - 1 - i)
    if n < 1:
        raise ValueError(f"no batch starts at {i} of {len(source)} steps")
    return source[i : i + n], source[i + 1 : i + 1 + n].reshape(-1)
