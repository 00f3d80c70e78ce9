"""fewshot_utils: the shared code of the fewshot-book, one small module per concept.

**The methods** (what the chapters teach; read these to learn the techniques):

- ``data`` (the real datasets: download, mirror, decode), ``episodes`` (sampling N-way
  K-shot tasks), ``models`` (Conv-4, ResNet-12), ``distances`` (squared Euclidean, LSED,
  cosine; prototypes and the ProtoNet loss), ``training`` (episodic training with exact
  resume), ``evaluation`` (test episodes over cached embeddings, intervals);
- the three papers' methods: ``saturation`` (softmax saturation and metric scaling,
  chapter 1), ``gradients`` (dL/dd of real training episodes, chapter 2), ``scale``
  (metric scale and embedding scale, chapter 4b), ``dense`` and ``stage1`` (dense
  classification, chapter 5), ``implanting`` (chapter 6), ``tadam`` (chapter 7).

**The book's machinery** (how the book runs, records and checks itself; not needed to
learn the methods):

- one report module per part, the chapters' folded plumbing (tables beside the papers',
  records, time estimates, findings text): ``report_lsed`` (chapters 0-2),
  ``report_protonet`` (chapters 3-4b), ``report_dense`` (chapters 5-6), ``report_tadam``
  (chapter 7);
- ``profiles`` (smoke / cpu / full, devices, seeds, time estimates), ``checkpoints``
  (atomic saves and exact resume), ``results`` (provenance records), ``paper_numbers``
  (the published tables), ``reproduction`` (records beside the published numbers),
  ``effects`` and ``verdicts`` (the papers' claims as paired differences, and one verdict
  rule for them), ``plots``, ``diagrams`` and ``display`` (figures, pictures of the ideas,
  tables and shown source), ``colab`` (Google Drive on Colab).
"""

__version__ = "0.1.0"
