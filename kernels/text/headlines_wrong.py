"""Wrong headline loaders: the mutants of transformers.news_headlines, each a plausible reading mistake.

Each has the signature of :func:`harness.data.headlines.load_headlines` (``(config, data_dir=None)``
-> ``(train, test, description)``); the task's check, which writes a CSV and a TSV with the traps
in them and reads them back, must catch each one (``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

from harness.data import read_headlines
from harness.data.headlines import load_headlines


def ignores_files(config, data_dir=None):
    """WRONG: never looks at ``data_dir``: always the synthetic stand-in."""
    return load_headlines(config, None)


def tsv_as_csv(config, data_dir=None):
    """WRONG: every file parsed as comma-separated, the TSV included."""
    return load_headlines(config, data_dir, read=lambda path, **kw: read_headlines(path, delimiter=","))


def per_file_numbering(config, data_dir=None):
    """WRONG: the test file keeps its own label numbering (its sorted class names), not the training file's."""
    tr, te, d = load_headlines(config, data_dir)
    if data_dir is not None:
        te = read_headlines(data_dir / "headlines" / "test.tsv")
    return tr, te, d


def hides_short_row(config, data_dir=None):
    """WRONG: a malformed file is swallowed and the synthetic stand-in returned instead of an error."""
    try:
        return load_headlines(config, data_dir)
    except ValueError:
        return load_headlines(config, None)
