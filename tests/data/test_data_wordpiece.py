"""WordPiece: BERT's greedy longest-match-first cut on a vocab.txt written here, a vocabulary
trained offline on text, and what the loader refuses."""

import pytest

from harness.data.errors import DataFormatError
from harness.data.wordpiece import FIRST_ORDINARY, SPECIALS, load_wordpiece, train_wordpiece, wordpiece_corpus

pytest.importorskip("tokenizers", reason="needs tokenizers (the data extra)")


def _vocab(tmp_path, pieces):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join([*SPECIALS, *pieces]) + "\n", encoding="utf-8")
    return path


def test_bert_vocab_txt_cuts_greedily_longest_first(tmp_path):
    # google-research/bert tokenization.py's docstring example: "unaffable" -> un ##aff ##able
    tok = load_wordpiece(_vocab(tmp_path, ["un", "##aff", "##able", "a", "##ff", "aff", "able", ",", "x"]))
    assert tok.pieces("unaffable") == ["un", "##aff", "##able"]
    assert tok.pieces("UnAffable, x") == ["un", "##aff", "##able", ",", "x"]  # lower-cased, punctuation split
    assert tok.pieces("zebra") == ["[UNK]"]  # no cut of the whole word: the word is unknown
    assert tok.encode("able").tolist() == [FIRST_ORDINARY + 6]
    assert tok.decode(tok.encode("unaffable able")) == "unaffable able"


def test_trained_vocabulary_has_the_specials_first_and_round_trips():
    text = "\n".join(["the quick brown fox jumps over the lazy dog"] * 20 + ["quickly jumping foxes"] * 5)
    tok = train_wordpiece(text, 200)
    assert [tok.id(s) for s in SPECIALS] == list(range(len(SPECIALS)))
    assert tok.vocab_size <= 200
    assert tok.decode(tok.encode("The lazy dog jumps")) == "the lazy dog jumps"
    assert all(p == "[UNK]" or not p.startswith("[") for p in tok.pieces("jumping foxes"))
    with pytest.raises(ValueError, match="special tokens"):
        train_wordpiece(text, 5)


def test_vocab_without_mask_is_refused_and_data_dir_vocab_wins(tmp_path, monkeypatch):
    bad = tmp_path / "bad.txt"
    bad.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    with pytest.raises(DataFormatError, match=r"no \[MASK\]"):
        load_wordpiece(bad)
    (tmp_path / "wordpiece").mkdir()
    _vocab(tmp_path / "wordpiece", ["the", "a", "##s"])
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    tok, train, held, desc = wordpiece_corpus(100, real=True)
    assert tok.vocab_size == len(SPECIALS) + 3 and "vocab.txt" in desc
    assert train.dtype.is_floating_point is False and int(train.max()) < tok.vocab_size
