"""Benchmark: Omniglot 20-way 1-shot 15-query test episodes with Conv-4 on the CPU.

Target (the issue): 10,000 episodes, embedding included, in at most 30 s on a 2-core CPU.

Measures, on the real Omniglot test split (1692 classes x 20 = 33,840 images):
  (a) embedding every test image once (``fewshot_utils.evaluation.embed``),
  (b) ``evaluate_embeddings`` over the cached embeddings for N episodes,
for the 64-d Conv-4 and the 576-d ``last_pool=False`` variant, against the naive way
(re-embedding the 320 images of each episode), timed on a few episodes and extrapolated.

    python benchmarks/bench_evaluation.py                 # 10,000 episodes
    python benchmarks/bench_evaluation.py --quick         # CI: 1,000 episodes, 10 naive ones
    python benchmarks/bench_evaluation.py --json out.json # also write the figures

Needs the data (``FEWSHOT_DATA_DIR`` cache or ``FEWSHOT_DATA_MIRROR``). The weights are
random (seeded): speed does not depend on them, accuracy figures are only a sanity check.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from fewshot_utils.data import load_omniglot
from fewshot_utils.distances import protonet_logits
from fewshot_utils.episodes import query_labels, sample_indices
from fewshot_utils.evaluation import embed, evaluate_embeddings
from fewshot_utils.models import conv4_for
from fewshot_utils.results import git_commit

WAY, SHOT, QUERY = 20, 1, 15
TARGET_S = 30.0
TARGET_EPISODES = 10_000


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, B on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


@torch.no_grad()
def naive(model, data, episodes: int, seed: int) -> tuple[float, torch.Tensor]:
    """Re-embed the support and query images of every episode. Uses the same episode
    indices as ``evaluate_embeddings(seed=seed)``, so per-episode accuracies must agree."""
    model = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(seed)
    classes, items = sample_indices(data.shape[0], data.shape[1], WAY, SHOT + QUERY, gen, episodes)
    labels = query_labels(WAY, QUERY)
    accs = []
    t = time.perf_counter()
    for c, i in zip(classes, items):
        x = data[c[:, None], i]  # [way, shot + query, 28, 28]
        z = model(x.reshape(-1, *x.shape[2:])).view(WAY, SHOT + QUERY, -1)
        protos = z[:, :SHOT].mean(1)
        logits = protonet_logits(z[:, SHOT:].reshape(WAY * QUERY, -1), protos)
        accs.append((logits.argmax(-1) == labels).float().mean())
    return time.perf_counter() - t, torch.stack(accs)


def run_variant(data, last_pool: bool, episodes: int, naive_episodes: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = conv4_for("omniglot", last_pool=last_pool).eval()
    n_images = data.shape[0] * data.shape[1]

    t = time.perf_counter()
    emb = embed(model, data, device="cpu")
    t_embed = time.perf_counter() - t

    t = time.perf_counter()
    res = evaluate_embeddings(emb, WAY, SHOT, QUERY, episodes=episodes, seed=seed)
    t_eval = time.perf_counter() - t
    total = t_embed + t_eval

    t_naive, naive_acc = naive(model, data, naive_episodes, seed)
    cached_first = evaluate_embeddings(emb, WAY, SHOT, QUERY, episodes=naive_episodes, seed=seed)
    agree = (naive_acc - cached_first.per_episode).abs().max().item()
    naive_extrapolated = t_naive / naive_episodes * episodes

    return {
        "variant": "Conv-4 64-d" if last_pool else "Conv-4 576-d (last_pool=False)",
        "dim": emb.shape[-1],
        "images": n_images,
        "episodes": episodes,
        "embed_s": t_embed,
        "embed_images_per_s": n_images / t_embed,
        "evaluate_s": t_eval,
        "evaluate_episodes_per_s": episodes / t_eval,
        "total_s": total,
        "episodes_per_s": episodes / total,
        "accuracy": res.accuracy,
        "ci95": res.ci95,
        "naive_timed_episodes": naive_episodes,
        "naive_timed_s": t_naive,
        "naive_s_per_episode": t_naive / naive_episodes,
        "naive_extrapolated_s": naive_extrapolated,
        "speedup": naive_extrapolated / total,
        "naive_vs_cached_max_acc_diff": agree,
        "peak_rss_mb": peak_rss_mb(),
    }


def _old_embed(model, data, batch_size=128):
    """embed() before the speed-ups: the model itself in channels_last, no conv+BN folding."""
    model = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    flat = data.reshape(-1, *data.shape[2:])
    with torch.no_grad():
        out = [model(flat[i : i + batch_size]) for i in range(0, flat.shape[0], batch_size)]
    return torch.cat(out).reshape(data.shape[0], data.shape[1], -1)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def speedups(data, episodes: int, seed: int) -> list[dict]:
    """Each speed-up of evaluation measured on and off (Conv-4 64-d, same episodes)."""
    torch.manual_seed(seed)
    model = conv4_for("omniglot").eval()
    rows = []

    t_old, e_old = _timed(lambda: _old_embed(model, data))
    t_new, e_new = _timed(lambda: embed(model, data, device="cpu"))
    rows.append(
        dict(
            name="embed: conv+BN folded in a copy",
            before_s=t_old,
            after_s=t_new,
            max_abs_diff=(e_old - e_new).abs().max().item(),
        )
    )

    n_cls, per_class = data.shape[:2]

    def argsort_indices():
        g = torch.Generator().manual_seed(seed)
        for b in range(0, episodes, 1000):
            e = min(1000, episodes - b)
            torch.rand(e, n_cls, generator=g).argsort(-1)[:, :WAY]
            torch.rand(e, WAY, per_class, generator=g).argsort(-1)[..., : SHOT + QUERY]

    def new_indices():
        g = torch.Generator().manual_seed(seed)
        for b in range(0, episodes, 1000):
            sample_indices(n_cls, per_class, WAY, SHOT + QUERY, g, episodes=min(1000, episodes - b))

    t_old, _ = _timed(argsort_indices)
    t_new, _ = _timed(new_indices)
    rows.append(
        dict(name="sample_indices: topk (same indices) for argsort", before_s=t_old, after_s=t_new)
    )

    def ev(chunk=None):
        kw = {} if chunk is None else {"max_chunk_bytes": chunk}
        return evaluate_embeddings(e_new, WAY, SHOT, QUERY, episodes=episodes, seed=seed, **kw)

    t_old, r_old = _timed(lambda: ev(2**28))
    t_new, r_new = _timed(ev)
    same = bool(torch.equal(r_old.per_episode, r_new.per_episode))
    name = "evaluate_embeddings: chunks of 8 MB (were 256 MB)"
    rows.append(dict(name=name, before_s=t_old, after_s=t_new, same_accuracy=same))

    for r in rows:
        r["factor"] = r["before_s"] / r["after_s"]
    return rows


def report(r: dict) -> None:
    e = r["episodes"]
    print(f"\n== {r['variant']} ({r['dim']}-d embeddings) ==")
    print(
        f"  (a) embed {r['images']:,} test images once : {r['embed_s']:7.2f} s "
        f"({r['embed_images_per_s']:,.0f} images/s)"
    )
    print(
        f"  (b) evaluate_embeddings, {e:,} episodes : {r['evaluate_s']:7.2f} s "
        f"({r['evaluate_episodes_per_s']:,.0f} episodes/s)"
    )
    print(
        f"  total (a)+(b)                          : {r['total_s']:7.2f} s "
        f"({r['episodes_per_s']:,.0f} episodes/s)"
    )
    print(
        f"  accuracy (random weights, sanity only) : {100 * r['accuracy']:.2f} +- "
        f"{100 * r['ci95']:.2f} %"
    )
    print(
        f"  naive (re-embed every episode)         : {r['naive_timed_s']:.2f} s for "
        f"{r['naive_timed_episodes']} episodes = {1000 * r['naive_s_per_episode']:.1f} ms/episode"
    )
    print(
        f"  naive, EXTRAPOLATED to {e:,} episodes  : {r['naive_extrapolated_s']:7.1f} s "
        f"(= {r['naive_extrapolated_s'] / 60:.1f} min; not measured)"
    )
    print(f"  speed-up of embed-once over naive      : {r['speedup']:.0f}x")
    print(
        "  naive vs cached, same episodes         : max per-episode accuracy difference "
        f"{r['naive_vs_cached_max_acc_diff']:.4f}"
    )
    print(f"  peak RSS so far                        : {r['peak_rss_mb']:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=None, help=f"default {TARGET_EPISODES:,}")
    p.add_argument("--naive-episodes", type=int, default=None, help="default 50 (10 --quick)")
    p.add_argument("--quick", action="store_true", help="1,000 episodes, 10 naive ones (CI)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    episodes = args.episodes or (1000 if args.quick else TARGET_EPISODES)
    naive_episodes = args.naive_episodes or (10 if args.quick else 50)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, python "
        f"{platform.python_version()}"
    )
    print(f"load average before: {load_before[0]:.2f} (1 min), {load_before[1]:.2f} (5 min)")
    if load_before[0] > 0.5:
        print(
            "WARNING: the machine is busy; other processes compete for the cores and the "
            "figures below are pessimistic (with OpenMP, often much more than the lost share)"
        )
    print(f"task: Omniglot test, {WAY}-way {SHOT}-shot {QUERY}-query, {episodes:,} episodes, CPU")

    t = time.perf_counter()
    data = load_omniglot("test")
    t_load = time.perf_counter() - t
    print(f"load_omniglot('test'): {tuple(data.shape)} {data.dtype} in {t_load:.2f} s")

    results = [
        run_variant(data, last_pool, episodes, naive_episodes, args.seed)
        for last_pool in (True, False)
    ]
    for r in results:
        report(r)

    ablation = speedups(data, episodes, args.seed)
    print(f"\n== speed-ups, each measured off (before) and on (after), {episodes:,} episodes ==")
    for a in ablation:
        extra = {k: v for k, v in a.items() if k not in ("name", "before_s", "after_s", "factor")}
        print(
            f"  {a['name']:50s} {a['before_s']:7.2f} s -> {a['after_s']:7.2f} s "
            f"({a['factor']:.2f}x) {extra or ''}"
        )

    main_r = results[0]
    per_10k = main_r["embed_s"] + main_r["evaluate_s"] * TARGET_EPISODES / episodes
    scaled = "" if episodes == TARGET_EPISODES else " (evaluate part scaled linearly)"
    verdict = "MET" if per_10k <= TARGET_S else "MISSED"
    print(
        f"\ntarget: {TARGET_EPISODES:,} episodes, embedding included, <= {TARGET_S:.0f} s: "
        f"{per_10k:.2f} s for Conv-4 64-d{scaled} -> {verdict}"
        f" (+ {t_load:.2f} s to load the data)"
    )
    load_after = os.getloadavg()
    print(f"peak RSS: {peak_rss_mb():.0f} MB; load average after: {load_after[0]:.2f} (1 min)")

    if args.json:
        figures = {
            "task": {
                "dataset": "omniglot",
                "split": "test",
                "way": WAY,
                "shot": SHOT,
                "query": QUERY,
                "episodes": episodes,
                "seed": args.seed,
            },
            "environment": {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "commit": git_commit(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg_before": load_before,
                "loadavg_after": load_after,
            },
            "load_s": t_load,
            "variants": results,
            "speedups": ablation,
            "target": {
                "episodes": TARGET_EPISODES,
                "seconds": TARGET_S,
                "estimated_s": per_10k,
                "met": per_10k <= TARGET_S,
            },
            "peak_rss_mb": peak_rss_mb(),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
