"""Benchmark of the BERT pretraining chapter: our notebooks against the d2l 0.17.6 reference.

Run from the repository root (``make bench``):

    .venv/bin/python -m benchmarks [--frameworks mxnet pytorch] [--steps 50] [--quick]

For each framework it executes, each in a fresh Jupyter kernel and one after the other,

* OURS: the generated notebook ``chapters/<framework>/bert-pretraining.ipynb`` (on a copy in
  memory; the file itself is never written), with ``D2L_WIKITEXT2_DIR`` pointing at the
  offline corpus;
* REFERENCE: a notebook built from the code blocks of the spec chapter
  (``../shared/spec/bert-pretraining.ja.md``), importing d2l 0.17.6 from ``_build/reference/``
  (downloaded there with pip, never installed into the venv), with ``d2l.download_extract``
  patched to return the offline corpus.

Both get the step count from papermill, injected after their ``parameters`` cell. The
notebooks are run cell by cell, so every cell gets its own wall time. The benchmark only
measures and prints; it judges nothing (no assertions on timings).

Offline corpus: WikiText-2 *validation + test* splits concatenated as ``wiki.train.tokens``
(:func:`booktools.corpus.offline_corpus`). It is NOT the official training split; every report
says so.

Modules, one job each: :mod:`.inputs` (corpora, reference library, the two notebooks),
:mod:`.runs` (execution and what the runs printed), :mod:`.limit` (the compute-bound model),
:mod:`.report` (machine and tables), ``__main__`` (the command line).
"""

from booktools.paths import BUILD_DIR

#: the benchmark's own files: executed copies, run results, matmul rates, the report
BENCH_DIR = BUILD_DIR / 'bench'
