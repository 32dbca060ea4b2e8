"""WikiText-2: the official zip downloaded and tokenised as AWD-LSTM does; LM batches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mlbench_core.datasets import DatasetError, batchify, get_batch, load_wikitext2
from mlbench_core.datasets.wikitext2 import EOS, SOURCE, UNK, build_corpus, read_wikitext2
from tests.mlbench_core.datasets import formats

TRAIN = " = Cats = \n\n the cat sat on the mat \n a <unk> cat \n"
VALID = " the dog sat \n"
TEST = "\n the cat \n"


def test_downloads_and_builds_the_vocabulary_from_training_only(mirror, tmp_path):
    archive = formats.wikitext2_zip(TRAIN, VALID, TEST)
    mirror.put(SOURCE.filename, archive)
    source = dataclasses.replace(SOURCE, digest=formats.md5(archive))
    corpus = load_wikitext2(tmp_path, base_url=mirror.url, progress=False, source=source)
    words = corpus.dictionary.idx2word
    assert words == ["=", "Cats", EOS, "the", "cat", "sat", "on", "mat", "a", UNK]
    assert corpus.dictionary.word2idx == {w: i for i, w in enumerate(words)}
    assert len(corpus.dictionary) == 10

    def text(ids: torch.Tensor) -> list[str]:
        return [words[i] for i in ids.tolist()]

    assert corpus.train.dtype == torch.long
    assert (
        text(corpus.train)
        == "= Cats = <eos> <eos> the cat sat on the mat <eos> a <unk> cat <eos>".split()
    )
    assert text(corpus.valid) == "the <unk> sat <eos>".split()  # "dog" is not in training
    assert text(corpus.test) == "<eos> the cat <eos>".split()


def test_unknown_words_get_an_unk_even_without_one_in_training():
    corpus = build_corpus(["a b"], ["c"], [])
    assert corpus.dictionary.idx2word == ["a", "b", EOS, UNK]
    assert corpus.valid.tolist() == [3, 2] and corpus.test.tolist() == []


def test_a_zip_without_the_token_files_is_named(tmp_path):
    path = tmp_path / SOURCE.filename
    path.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable"):
        read_wikitext2(path)


def test_batchify_cuts_columns_of_contiguous_text():
    data = torch.arange(23)
    batched = batchify(data, 4)
    assert batched.shape == (5, 4) and batched.is_contiguous()
    assert batched[:, 1].tolist() == [5, 6, 7, 8, 9]  # column j is the j-th run of 5


def test_get_batch_gives_inputs_and_next_word_targets():
    source = batchify(torch.arange(40), 4)  # (10, 4)
    x, y = get_batch(source, 0, 3)
    assert x.shape == (3, 4) and y.shape == (12,)
    assert torch.equal(y, source[1:4].reshape(-1))
    x, y = get_batch(source, 7, 3)  # at the end: shorter
    assert x.shape == (2, 4) and torch.equal(y, source[8:10].reshape(-1))
    with pytest.raises(ValueError):
        get_batch(source, 9, 3)
