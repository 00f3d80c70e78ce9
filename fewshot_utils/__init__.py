"""fewshot_utils: the shared code of the fewshot-book.

One module per concept: ``data`` (real datasets), ``episodes`` (sampling),
``models`` (backbones), ``distances`` (metrics, prototypes, ProtoNet loss),
``training`` (episodic training), ``checkpoints`` (exact resume), ``evaluation`` (test
episodes over cached embeddings), ``results`` (provenance records),
``profiles`` (smoke / cpu / full), ``plots`` (figures), ``saturation``
(softmax saturation and metric scaling, chapter 1), ``gradients`` (dl/dd of
training episodes, chapter 2), ``verdicts`` (a paper's claim against named checks).
"""

__version__ = "0.1.0"
