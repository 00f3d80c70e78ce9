"""Episode sampling over a class-indexed tensor ``[classes, per_class, ...]``.

An episode picks ``way`` classes and, in each, ``shot + query`` distinct items
(images or cached embeddings): the ``k`` smallest of uniform random keys, one
key per class (and per item), so it is vectorised over classes (and, with
``episodes=E``, over many episodes at once), and reproducible through a
``torch.Generator``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["Episode", "check_episode", "sample_indices", "sample_episode", "query_labels"]


class Episode(NamedTuple):
    """Support ``[way, shot, ...]`` and query ``[way, query, ...]``, item ``[k, i]`` of
    class ``k``; ``classes`` are the row indices into the source tensor."""

    support: torch.Tensor
    query: torch.Tensor
    classes: torch.Tensor


def check_episode(num_classes: int, per_class: int, way: int, shot: int, query: int) -> None:
    """Raise ``ValueError`` naming the limit if the data cannot give such episodes."""
    if way < 2 or shot < 1 or query < 0:
        raise ValueError(
            f"need way >= 2, shot >= 1, query >= 0; got {way}-way {shot}-shot {query}-query"
        )
    if way > num_classes:
        raise ValueError(
            f"way={way} exceeds the {num_classes} classes available; use way <= {num_classes}"
        )
    if shot + query > per_class:
        raise ValueError(
            f"shot + query = {shot} + {query} = {shot + query} exceeds the {per_class} items per "
            f"class; use shot + query <= {per_class}"
        )


def sample_indices(
    num_classes: int,
    per_class: int,
    way: int,
    shot_plus_query: int,
    generator: torch.Generator | None = None,
    episodes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class indices ``[E, way]`` and item indices ``[E, way, shot+query]`` (no ``E`` axis
    when ``episodes`` is None), all distinct within an episode, on the CPU."""
    e = 1 if episodes is None else episodes
    keys = torch.rand(e, num_classes, generator=generator, dtype=torch.float32)
    classes = _smallest(keys, way)
    keys = torch.rand(e, way, per_class, generator=generator, dtype=torch.float32)
    items = _smallest(keys, shot_plus_query)
    if episodes is None:
        return classes[0], items[0]
    return classes, items


def _smallest(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` smallest ``keys`` along the last axis: exactly
    ``keys.argsort(-1)[..., :k]``, which the episodes of every seed were first drawn with
    (committed results depend on them; tests pin them), for a fraction of the cost.

    A partial selection (``topk``) gives the same indices in the same ascending order
    whenever the ``k + 1`` smallest keys are distinct. float32 keys do collide now and then
    (1692 classes: about one episode in 200), and argsort orders equal keys in its own way,
    so rows with a tie there are sorted by argsort itself.
    """
    n = keys.shape[-1]
    if k >= n:
        return keys.argsort(-1)[..., :k]
    values, idx = keys.topk(k + 1, -1, largest=False, sorted=True)
    idx = idx[..., :k]
    tied = (values[..., 1:] == values[..., :-1]).any(-1)
    if tied.any():
        idx[tied] = keys[tied].argsort(-1)[..., :k]
    return idx


def sample_episode(
    data: torch.Tensor,
    way: int,
    shot: int,
    query: int,
    generator: torch.Generator | None = None,
) -> Episode:
    """One ``way``-way ``shot``-shot episode with ``query`` queries per class
    from ``data``.

    ``data`` may live on any device; indices are drawn on the CPU (so the same
    generator gives the same episode everywhere) and moved to ``data``'s device.
    """
    if data.dim() < 2:
        shape = tuple(data.shape)
        msg = f"data must be [classes, per_class, ...], got shape {shape}"
        raise ValueError(msg)
    n_classes, per_class = data.shape[0], data.shape[1]
    check_episode(n_classes, per_class, way, shot, query)
    picks = sample_indices(n_classes, per_class, way, shot + query, generator)
    classes, items = (t.to(data.device) for t in picks)
    picked = data[classes[:, None], items]
    return Episode(picked[:, :shot], picked[:, shot:], classes)


def query_labels(way: int, query: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Labels ``[way * query]`` of queries flattened class by class: ``0,0,..,1,1,..``."""
    return torch.arange(way, device=device).repeat_interleave(query)
