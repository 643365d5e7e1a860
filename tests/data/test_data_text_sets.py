"""IMDB folders, CoNLL NER files, parallel TSV and headline CSV readers."""

import pytest
import torch

from harness.data import (
    DataFormatError,
    DataNotFoundError,
    iob1_to_bio,
    read_conll,
    read_headlines,
    read_imdb,
    read_parallel_tsv,
)


def _imdb(root):
    reviews = {
        ("train", "pos"): {"0_9.txt": "Loved it.<br /><br />Great cast.", "1_8.txt": "Fine film"},
        ("train", "neg"): {"2_1.txt": "Dull.", "10_2.txt": "Awful"},
        ("test", "pos"): {"5_10.txt": "Superb"},
        ("test", "neg"): {"6_3.txt": "Bad"},
        ("train", "unsup"): {"9_0.txt": "unlabelled"},
    }
    for (split, cls), files in reviews.items():
        d = root / "aclImdb" / split / cls
        d.mkdir(parents=True)
        for name, text in files.items():
            (d / name).write_text(text, encoding="utf-8")


def test_imdb_folder_layout(tmp_path):
    _imdb(tmp_path)
    train = read_imdb(tmp_path, "train")
    # neg first, files in sorted name order; unsup skipped; <br /> cleaned
    assert train.texts == ["Awful", "Dull.", "Loved it.  Great cast.", "Fine film"]
    assert train.labels.tolist() == [0, 0, 1, 1] and train.classes == ("neg", "pos")
    assert not train.synthetic
    texts, labels = read_imdb(tmp_path / "aclImdb", "test")
    assert texts == ["Bad", "Superb"] and labels.dtype == torch.int64
    assert len(read_imdb(tmp_path, "train", max_per_class=1)) == 2
    assert "<br />" in read_imdb(tmp_path, "train", clean_html=False).texts[2]


def test_imdb_missing_and_empty(tmp_path):
    with pytest.raises(DataNotFoundError, match="IMDB train"):
        read_imdb(tmp_path)
    (tmp_path / "train" / "pos").mkdir(parents=True)
    (tmp_path / "train" / "neg").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"neg.*\*\.txt"):
        read_imdb(tmp_path)


# The opening sentences of the CoNLL-2003 English training data (Tjong Kim Sang & De Meulder;
# the BIO-tagged copy most tools ship), with a second -DOCSTART- added before BRUSSELS.
CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
to TO B-VP O
boycott VB I-VP O
British JJ B-NP B-MISC
lamb NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O"""


def test_conll_worked_example(tmp_path):
    p = tmp_path / "eng.train"
    p.write_text(CONLL)
    s = read_conll(p)
    assert len(s) == 3  # DOCSTART lines make no sentence; no final blank line needed
    assert s.sentences[0] == ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    assert s.tags[0] == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    assert s.sentences[1] == ["Peter", "Blackburn"] and s.tags[1] == ["B-PER", "I-PER"]
    assert s.sentences[2] == ["BRUSSELS", "1996-08-22"] and s.tags[2] == ["B-LOC", "O"]
    assert s.tag_names == ("O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER")
    chunks = read_conll(p, tag_col=2)  # another column
    assert chunks.tags[1] == ["B-NP", "I-NP"]


def test_conll_bad_line_and_iob1(tmp_path):
    p = tmp_path / "bad.conll"
    p.write_text("EU B-ORG\nrejects\n")
    with pytest.raises(DataFormatError, match="bad.conll.*line 2"):
        read_conll(p)
    assert iob1_to_bio(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-LOC",
        "B-ORG",
    ]


def test_parallel_tsv(tmp_path):
    p = tmp_path / "fra.txt"
    p.write_text("Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org\n\nHi.\tSalut !\n", encoding="utf-8")
    src, tgt = read_parallel_tsv(p)
    assert src == ["Go.", "Hi."] and tgt == ["Va !", "Salut !"]
    p.write_text("Go. Va !\n")
    with pytest.raises(DataFormatError, match="fra.txt.*2 tab-separated columns on line 1"):
        read_parallel_tsv(p)


def test_headlines_csv_and_tsv(tmp_path):
    p = tmp_path / "news.csv"
    p.write_text('category,headline\nSPORTS,"Team wins, again"\nWORLD,Summit ends\nSPORTS,Coach resigns\n')
    h = read_headlines(p)
    assert h.texts == ["Team wins, again", "Summit ends", "Coach resigns"]
    assert h.classes == ("SPORTS", "WORLD") and h.labels.tolist() == [0, 1, 0]
    q = tmp_path / "ag.tsv"
    q.write_text("3\tStocks rally\n1\tTalks resume\n")
    g = read_headlines(q, text_col=1, label_col=0, header=False)
    assert g.classes == ("1", "3") and g.labels.tolist() == [1, 0]
    with pytest.raises(DataFormatError, match="news.csv.*'topic'"):
        read_headlines(p, label_col="topic")
