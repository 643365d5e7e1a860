"""Plain-text corpus (stdlib docstrings) and the char/word tokenizers."""

import hashlib
import sys

import pytest
import torch

from harness.data import PAD, UNK, CharTokenizer, DataFormatError, WordTokenizer, read_text, stdlib_corpus
from harness.data import text as text_mod


def test_stdlib_corpus_is_deterministic_real_text():
    first = stdlib_corpus()
    text_mod.stdlib_corpus.cache_clear()  # rebuild from the sources, not the cache
    second = stdlib_corpus()
    assert first is not second and first.text == second.text
    assert len(first.text) > 200_000
    assert first.sha256 == hashlib.sha256(second.text.encode()).hexdigest()
    assert not first.synthetic
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"Python {ver}" in first.description
    # real prose from a known docstring, in sorted-module order (argparse comes first)
    assert first.text.startswith("Command-line parsing library")
    assert "Return a new" in first.text or "Return the" in first.text


def test_read_text(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("héllo\r\nworld\n".encode())
    assert read_text(p) == "héllo\nworld\n"
    p.write_bytes(b"ok \xff\xfe")
    with pytest.raises(DataFormatError, match=r"t.txt.*offset 3"):
        read_text(p)


def test_char_tokenizer_round_trip_and_unknown():
    tok = CharTokenizer.fit("hello world")
    assert tok.itos[:2] == [PAD, UNK] and tok.pad_id == 0 and tok.unk_id == 1
    assert tok.itos[2] == "l"  # most frequent first
    ids = tok.encode("hello")
    assert ids.dtype == torch.int64 and tok.decode(ids) == "hello"
    unk = tok.encode("hez")  # 'z' never seen in training
    assert unk.tolist()[-1] == tok.unk_id and tok.decode(unk) == "he\ufffd"
    assert len(tok) == 2 + len(set("hello world"))


def test_word_tokenizer_vocab_from_train_only():
    train = ["The movie was great!", "the plot was dull", "great acting"]
    test = ["The soundtrack was great"]
    tok = WordTokenizer.fit(train)
    assert "soundtrack" not in tok.stoi  # test-only word
    ids = tok.encode(test[0])
    assert ids.tolist() == [tok.stoi["the"], tok.unk_id, tok.stoi["was"], tok.stoi["great"]]
    assert tok.decode(ids) == f"the {UNK} was great"
    assert tok.split("Don't stop, it's fine.") == ["don't", "stop", ",", "it's", "fine", "."]


def test_min_freq_max_size_and_deterministic_order():
    texts = ["b a a c", "a b d"]
    tok = WordTokenizer.fit(texts, min_freq=2)
    assert tok.itos == [PAD, UNK, "a", "b"]  # count 3, 2; c and d seen once
    assert WordTokenizer.fit(texts, max_size=1).itos == [PAD, UNK, "a"]
    assert WordTokenizer.fit(list(reversed(texts))).itos == WordTokenizer.fit(texts).itos
    with pytest.raises(ValueError):
        WordTokenizer.fit(texts, min_freq=0)


def test_encode_batch_pads_and_truncates():
    tok = WordTokenizer.fit(["a b c d"])
    ids, lengths = tok.encode_batch(["a b c d", "b", "a e"], max_len=3)
    assert ids.shape == (3, 3) and lengths.tolist() == [3, 1, 2]
    assert ids[1, 1:].tolist() == [tok.pad_id] * 2
    assert ids[2].tolist() == [tok.stoi["a"], tok.unk_id, tok.pad_id]
    assert tok.decode(ids[1]) == "b" and tok.decode(ids[1], skip_pad=False) == "b <pad> <pad>"
    with pytest.raises(IndexError):
        tok.decode([99])
