"""harness.data.headlines.write_headlines: the files it writes read back through read_headlines."""

from harness.data.headlines import write_headlines
from harness.data.text_sets import read_headlines


def test_write_headlines_round_trips_quotes_and_tabs(tmp_path):
    rows = [('Coach says "we win, again"', "sports"), ("Rates hold", "business")]
    folder = write_headlines(tmp_path / "h", {"a.csv": rows, "b.TSV": rows})
    assert folder == tmp_path / "h"
    assert "\t" in (folder / "b.TSV").read_text() and '""we win' in (folder / "a.csv").read_text()
    for name in ("a.csv", "b.TSV"):
        got = read_headlines(folder / name)
        assert got.texts == [h for h, _ in rows] and got.classes == ("business", "sports")
