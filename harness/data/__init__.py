"""Data sets and readers for torchdrills.

Readers parse the real formats (MNIST IDX, CIFAR python batches, CSV tables, IMDB folders,
CoNLL NER files, parallel TSV, headline CSVs, llm.c token shards); embedded real data comes
from scikit-learn and the Python standard library's docstrings; where no real data exists
offline a seeded synthetic generator stands in and says so (``synthetic=True``).
:func:`resolve` tells which of the three a run uses. Nothing here downloads unless
:func:`fetch` is called.

Modules: ``idx``, ``cifar``, ``tabular``, ``digits`` (flat digits features), ``text`` (corpus +
tokenizers), ``text_sets`` (labelled-text readers), ``shards``, ``synthetic``, ``sources``; containers in ``sets``,
errors in ``errors``.
"""

from .cifar import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_cifar100,
    read_cifar_batch,
    write_cifar10,
    write_cifar100,
    write_cifar_batch,
    write_cifar_meta,
)
from .digits import digits_features, digits_split
from .errors import DataFormatError, DataNotFoundError
from .idx import (
    FASHION_MNIST_CLASSES,
    MNIST_FILES,
    load_mnist,
    read_idx,
    read_idx_images,
    read_idx_labels,
    write_idx,
    write_mnist,
)
from .sets import ImageSet, ParallelSet, TabularSet, TaggedSentences, TextClassificationSet, TextCorpus
from .shards import TokenShardLoader, random_batch, read_shard, write_shard
from .sources import (
    DATASETS,
    ENV_VAR,
    REMOTE,
    ChecksumError,
    DatasetSource,
    data_root,
    download,
    fetch,
    resolve,
    sha256_file,
)
from .synthetic import (
    GENERATORS,
    synthetic_cifar,
    synthetic_headlines,
    synthetic_ner,
    synthetic_reviews,
    synthetic_translation,
    toy_translate,
)
from .tabular import fit_standardizer, load_digits_images, load_tabular, read_csv_table, standardize, stratified_split
from .text import PAD, STDLIB_CORPUS_MODULES, UNK, CharTokenizer, WordTokenizer, read_text, stdlib_corpus
from .text_sets import IMDB_CLASSES, iob1_to_bio, read_conll, read_headlines, read_imdb, read_parallel_tsv

__all__ = [
    # errors and containers
    "DataFormatError",
    "DataNotFoundError",
    "ChecksumError",
    "ImageSet",
    "TabularSet",
    "TextClassificationSet",
    "TaggedSentences",
    "ParallelSet",
    "TextCorpus",
    # images
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "write_idx",
    "load_mnist",
    "write_mnist",
    "MNIST_FILES",
    "FASHION_MNIST_CLASSES",
    "read_cifar_batch",
    "load_cifar10",
    "load_cifar100",
    "write_cifar_batch",
    "write_cifar_meta",
    "write_cifar10",
    "write_cifar100",
    "CIFAR10_CLASSES",
    # tabular
    "read_csv_table",
    "fit_standardizer",
    "standardize",
    "stratified_split",
    "load_digits_images",
    "digits_features",
    "digits_split",
    "load_tabular",
    # text
    "read_text",
    "stdlib_corpus",
    "STDLIB_CORPUS_MODULES",
    "CharTokenizer",
    "WordTokenizer",
    "PAD",
    "UNK",
    "read_imdb",
    "IMDB_CLASSES",
    "read_conll",
    "iob1_to_bio",
    "read_parallel_tsv",
    "read_headlines",
    "write_shard",
    "read_shard",
    "random_batch",
    "TokenShardLoader",
    # synthetic
    "GENERATORS",
    "synthetic_cifar",
    "synthetic_reviews",
    "synthetic_ner",
    "synthetic_translation",
    "toy_translate",
    "synthetic_headlines",
    # sources
    "ENV_VAR",
    "DATASETS",
    "REMOTE",
    "DatasetSource",
    "data_root",
    "resolve",
    "fetch",
    "download",
    "sha256_file",
]
