"""5.09 ner: CoNLL reader round trip, conlleval worked examples, tagger F1; planted bugs are caught."""

from harness import REGISTRY
from harness.data import read_conll
from harness.testing import expect_check_fails, run_check
from kernels.text import ner_metrics
from kernels.text.ner_metrics import NERScores, TypeScore

Task = REGISTRY.get("rnn.ner")
ner_module = __import__(Task.__module__, fromlist=["bio_to_iob1"])


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["worked examples: chunk counts"]["n"] == len(ner_module.WORKED_EXAMPLES)
    assert rec.metrics["check_entity_f1"] >= Task.sizes["tiny"].min_f1


def _from_spans(gold_spans, pred_spans, tokens, ok_tags):
    correct = len(gold_spans & pred_spans)
    p = correct / len(pred_spans) if pred_spans else 0.0
    r = correct / len(gold_spans) if gold_spans else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return NERScores(
        TypeScore(p, r, f, len(gold_spans), len(pred_spans), correct), {}, tokens, ok_tags / tokens if tokens else 0.0
    )


def _token_level(gold, pred):
    """Counts tagged tokens as if each were an entity (token-level P/R/F1)."""

    def spans(tags):
        return [(t[2:], i, i) for i, t in enumerate(tags) if t != "O"]

    return _scorer(spans)(gold, pred)


def _strict_spans(tags):
    """Strict IOB2: an I- without a B- (or of another type) belongs to no entity."""
    out, start, kind = [], None, None
    for i, t in enumerate([*tags, "O"]):
        if start is not None and not (t.startswith("I-") and t[2:] == kind):
            out.append((kind, start, i - 1))
            start = None
        if t.startswith("B-"):
            start, kind = i, t[2:]
    return out


def _scorer(span_fn):
    def score(gold, pred):
        g = {(i,) + c for i, s in enumerate(gold) for c in span_fn(s)}
        p = {(i,) + c for i, s in enumerate(pred) for c in span_fn(s)}
        n = sum(len(s) for s in gold)
        ok = sum(a == b for gs, ps in zip(gold, pred) for a, b in zip(gs, ps))
        return _from_spans(g, p, n, ok)

    return score


def _merge(tags):
    out, start, kind = [], None, None
    for i, t in enumerate([*tags, "O"]):
        if start is not None and (t == "O" or t.startswith("B-")):
            out.append((kind, start, i - 1))
            start = None
        if t != "O" and start is None:
            start, kind = i, t[2:]
    return out


class TokenLevel(Task):
    score_fn = staticmethod(_token_level)


class StrictMode(Task):
    score_fn = staticmethod(_scorer(_strict_spans))


class MergesAcrossTypes(Task):
    score_fn = staticmethod(_scorer(_merge))


class ReaderDropsLastSentence(Task):
    @staticmethod
    def read_fn(path):
        d = read_conll(path)
        return type(d)(d.sentences[:-1], d.tags[:-1], d.tag_names, d.description)


def test_token_level_counting_is_caught():
    expect_check_fails(TokenLevel, match="worked example")


def test_strict_iob2_mode_is_caught():
    err = expect_check_fails(StrictMode, match="worked example")
    assert "I- without B-" in str(err)


def test_merging_chunks_across_a_type_change_is_caught():
    err = expect_check_fails(MergesAcrossTypes, match="worked example")
    assert "type change" in str(err)


def test_reader_losing_a_sentence_is_caught():
    expect_check_fails(ReaderDropsLastSentence, match="CoNLL round trip")


def test_bio_to_iob1_inverts_iob1_to_bio():
    from harness.data import iob1_to_bio

    tags = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-MISC"]
    iob1 = ner_module.bio_to_iob1(tags)
    assert iob1 == ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O", "I-MISC"]
    assert iob1_to_bio(iob1) == tags
    assert ner_metrics.conlleval([tags], [tags]).f1 == 1.0


def test_bench_reads_real_conll_files_when_present(tmp_path, monkeypatch):
    from harness.data import synthetic_ner

    (tmp_path / "conll2003").mkdir()
    ner_module.write_conll(tmp_path / "conll2003" / "eng.train", synthetic_ner(6, seed=1))
    ner_module.write_conll(tmp_path / "conll2003" / "eng.testb", synthetic_ner(4, seed=2))
    monkeypatch.setenv("DRILLS_DATA_DIR", str(tmp_path))
    train, test, desc = Task().data(Task.sizes["tiny"], seed=0, real=True)
    assert "real files" in desc and len(train) == 6 and len(test) == 4
    assert train.tags == synthetic_ner(6, seed=1).tags  # IOB1 on disk, BIO after reading
