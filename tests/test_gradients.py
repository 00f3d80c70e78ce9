"""fewshot_utils.gradients: autograd against the closed form, the capture loop against
train_protonet step for step, the cache, and the histogram helpers."""

import copy
import math

import matplotlib
import pytest
import torch

from fewshot_utils.distances import lsed, squared_euclidean
from fewshot_utils.episodes import sample_episode
from fewshot_utils.gradients import (
    BIAS,
    GradientSnapshot,
    capture_training_gradients,
    embed_episode,
    episode_gradients,
    histogram_figure,
    log_abs_gradient,
    pool,
)
from fewshot_utils.models import Conv4
from fewshot_utils.saturation import distance_gradient
from fewshot_utils.training import TrainConfig, train_protonet

matplotlib.use("Agg")


def _data(seed: int, classes: int = 12, per_class: int = 10) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (classes, per_class, 28, 28), generator=g, dtype=torch.uint8)


def _net(seed: int = 0) -> Conv4:
    torch.manual_seed(seed)
    return Conv4(in_channels=1, hidden=8)


def _config(**kw) -> TrainConfig:
    episodes = dict(way=4, shot=1, query=3, max_episodes=5, episodes_per_epoch=5, seed=3)
    validation = dict(val_way=3, val_query=2, val_episodes=2)
    return TrainConfig(**{**episodes, **validation, **kw})


@pytest.mark.parametrize(
    ("distance", "kwargs", "scale"),
    [
        ("squared_euclidean", {}, 1.0),
        ("lsed", {"s": 0.0, "r": 0.01}, 1.0),
        ("lsed", {"s": 4.0, "r": 0.1}, 1.0),
        ("squared_euclidean", {}, 0.05),
    ],
)
def test_autograd_gradient_matches_closed_form(distance, kwargs, scale):
    net = _net().train()
    ep = sample_episode(_data(0), way=5, shot=2, query=4, generator=torch.Generator())
    loss, snap = episode_gradients(*embed_episode(net, ep), distance, scale, 0, **kwargs)
    assert loss.requires_grad and snap.grads.shape == (20, 5) == snap.distances.shape
    closed = distance_gradient(snap.distances, snap.labels, alpha=scale)
    torch.testing.assert_close(snap.grads, closed, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(snap.grads.sum(-1), torch.zeros(20), rtol=0, atol=1e-5)
    # also without a graph through the network (embeddings computed under no_grad)
    with torch.no_grad():
        emb = embed_episode(net, ep)
    _, snap2 = episode_gradients(*emb, distance, scale, 0, **kwargs)
    torch.testing.assert_close(snap2.grads, snap.grads)


def test_lsed_scales_the_gradient_by_r_above_s_only():
    """d d_LSED / d d_EUC is 1 below s and r above; with s = 0, LSED is r times SED."""
    x = torch.tensor([[0.5], [1.0], [3.0], [10.0]], requires_grad=True)  # d_EUC 0.25 .. 100
    y = torch.zeros(1, 1)
    d_euc = squared_euclidean(x, y)
    d_l = lsed(x, y, s=4.0, r=0.1)
    (g_l,) = torch.autograd.grad(d_l.sum(), x)
    (g_e,) = torch.autograd.grad(d_euc.sum(), x)
    ratio = (g_l / g_e).squeeze(1)
    torch.testing.assert_close(ratio, torch.tensor([1.0, 1.0, 0.1, 0.1]))
    z = torch.randn(6, 7)
    torch.testing.assert_close(lsed(z, z[:3], s=0.0, r=0.01), 0.01 * squared_euclidean(z, z[:3]))


def test_capture_is_train_protonet_step_for_step():
    data, val = _data(1), _data(2, classes=6)
    cfg = _config(distance="lsed", distance_kwargs={"s": 2.0, "r": 0.1})
    a, b = _net(), _net()
    snaps = capture_training_gradients(a, data, cfg, [0, 2, 5], device="cpu")
    run = train_protonet(b, data, val, cfg, checkpoint=None, device="cpu", progress=False)
    assert sorted(snaps) == [0, 2, 5] and run.episodes_done == 5
    for (name, pa), pb in zip(a.named_parameters(), run.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-6, msg=name)
    # iteration 0 is the fresh network on the first training episode
    fresh = _net().train()
    ep = sample_episode(data, cfg.way, cfg.shot, cfg.query, torch.Generator().manual_seed(cfg.seed))
    _, first = episode_gradients(*embed_episode(fresh, ep), "lsed", 1.0, 0, s=2.0, r=0.1)
    torch.testing.assert_close(snaps[0].grads, first.grads, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(snaps[0].distances, first.distances, rtol=1e-4, atol=1e-4)
    assert snaps[5].iteration == 5 and snaps[5].loss != snaps[0].loss


def test_capture_cache_loads_and_notices_a_new_configuration(tmp_path):
    data, cache = _data(3), tmp_path / "capture.pt"
    cfg = _config()
    first = capture_training_gradients(_net(), data, cfg, [0, 3], device="cpu", cache=cache)
    net = _net()
    before = copy.deepcopy(net.state_dict())
    again = capture_training_gradients(net, data, cfg, [0, 3], device="cpu", cache=cache)
    for k in first:
        torch.testing.assert_close(again[k].grads, first[k].grads, rtol=0, atol=0)
    for k, v in net.state_dict().items():  # loaded, not trained
        assert torch.equal(v, before[k]), k
    other = capture_training_gradients(_net(), data, cfg, [0, 4], device="cpu", cache=cache)
    assert sorted(other) == [0, 4]
    seeded = capture_training_gradients(_net(seed=1), data, cfg, [0, 4], device="cpu", cache=cache)
    assert not torch.equal(seeded[0].distances, other[0].distances)


def test_capture_rejects_bad_iterations():
    for bad in ([], [-1, 2], [0, 2000]):
        with pytest.raises(ValueError, match="iterations|halving"):
            capture_training_gradients(_net(), _data(0), _config(), bad, device="cpu")


def test_log_abs_gradient_and_pool():
    g = torch.tensor([0.0, -1.0, 1e-3])
    out = log_abs_gradient(g)
    torch.testing.assert_close(out, torch.log(torch.tensor([BIAS, 1 + BIAS, 1e-3 + BIAS])))
    assert out[0].item() == pytest.approx(math.log(1e-5))
    with pytest.raises(ValueError, match="bias"):
        log_abs_gradient(g, bias=0)
    s = GradientSnapshot(0, torch.ones(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]), 1.0, 0.5)
    t = GradientSnapshot(0, torch.ones(4, 3), torch.ones(4, 3), torch.tensor([2] * 4), 3.0, 1.0)
    p = pool([s, t])
    assert p.grads.shape == (6, 3) and p.labels.tolist() == [0, 1, 2, 2, 2, 2]
    assert p.loss == 2.0 and p.accuracy == 0.75
    with pytest.raises(ValueError, match="at least one"):
        pool([])


def test_histogram_figure_layout():
    g = torch.Generator().manual_seed(0)
    d = 100 * torch.rand(12, 4, generator=g)
    labels = torch.arange(4).repeat(3)
    snaps = {
        it: GradientSnapshot(it, d, distance_gradient(d, labels), labels, 1.0, 0.5)
        for it in (0, 8, 16)
    }
    fig = histogram_figure(snaps, "ProtoNet")
    assert len(fig.axes) == 6
    assert "after 8 iterations" in fig.axes[2].get_title()
    assert "below 1e-05" in fig.axes[0].get_title()
    matplotlib.pyplot.close(fig)


def test_snapshot_summary_counts_areas_and_sparsity_by_hand():
    from fewshot_utils.gradients import snapshot_summary

    grads = torch.tensor([[0.0, 0.5, -0.995], [1e-6, -0.2, 0.3]])  # III, II, I / III, II, II
    snap = GradientSnapshot(
        iteration=0,
        distances=torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]]),
        grads=grads,
        labels=torch.tensor([0, 1]),
        loss=0.7,
        accuracy=0.5,
    )
    s = snapshot_summary(snap)
    assert s["sparse"] == pytest.approx(2 / 6)
    assert (s["I"], s["II"], s["III"]) == pytest.approx((1 / 6, 3 / 6, 2 / 6))
    assert (s["median"], s["max"]) == (3.0, 100.0)  # torch's median: the lower of the middle two
    assert (s["loss"], s["acc"]) == (0.7, 0.5)


def test_initial_snapshots_apply_every_method_to_the_same_embeddings():
    from fewshot_utils.gradients import initial_snapshots

    data, net = _data(4), _net().train()
    methods = {
        "sed": ("squared_euclidean", {}),
        "lsed": ("lsed", {"s": 0.0, "r": 0.1}),
        "kinked": ("lsed", {"s": 1e9, "r": 0.1}),  # every distance below s: the identity
    }
    snaps = initial_snapshots(net, data, 4, 2, 3, 3, 7, methods)
    assert snaps["sed"].distances.shape == (3 * 4 * 3, 4)  # 3 episodes of 4-way, 3 queries
    torch.testing.assert_close(snaps["lsed"].distances, 0.1 * snaps["sed"].distances)
    torch.testing.assert_close(snaps["kinked"].grads, snaps["sed"].grads)
    assert not torch.allclose(snaps["lsed"].grads, snaps["sed"].grads)
    # the same as a loop over the episodes of a generator seeded 7
    gen = torch.Generator().manual_seed(7)
    manual = []
    for _ in range(3):
        with torch.no_grad():
            emb = embed_episode(net, sample_episode(data, 4, 2, 3, gen))
        manual.append(episode_gradients(*emb)[1])
    torch.testing.assert_close(snaps["sed"].grads, pool(manual).grads)
    other = initial_snapshots(net, data, 4, 2, 3, 3, 8, {"sed": methods["sed"]})
    assert not torch.equal(other["sed"].distances, snaps["sed"].distances)
    with pytest.raises(ValueError, match="at least one episode"):
        initial_snapshots(net, data, 4, 2, 3, 0, 7, methods)


def _snap(distances, grads, labels=None):
    labels = torch.zeros(len(distances), dtype=torch.long) if labels is None else labels
    return GradientSnapshot(0, torch.tensor(distances), torch.tensor(grads), labels, 0.5, 0.25)


def test_snapshot_summary_counts_the_distances_below_s():
    from fewshot_utils.gradients import snapshot_summary

    snap = _snap([[1.0, 4.0, 5.0], [3.0, 100.0, 4.5]], [[0.1, 0.2, -0.3], [0.1, 0.0, -0.1]])
    s = snapshot_summary(snap, s=4.0)
    assert s["below_s"] == pytest.approx(3 / 6) and s["s"] == 4.0  # 1, 4, 3
    assert "below_s" not in snapshot_summary(snap)


def test_spread_is_scale_free_in_the_distances():
    from fewshot_utils.gradients import spread

    snap = _snap([[1.0, 2.0, 3.0]], [[0.5, 0.5, 0.5]])
    g_std, d_std = spread(snap)
    assert g_std == pytest.approx(0.0, abs=1e-7)  # equal gradients: no spread
    assert d_std == pytest.approx(0.5)  # d / median = 0.5, 1, 1.5
    scaled = _snap([[100.0, 200.0, 300.0]], [[0.5, 1e-3, 0.0]])
    assert spread(scaled)[1] == pytest.approx(0.5)
    assert spread(scaled)[0] > 1.0


def test_summary_markdown_rows_and_threshold_column():
    from fewshot_utils.gradients import snapshot_summary, summary_markdown

    a = _snap([[1.0, 10.0]], [[0.0, 0.5]])
    text = summary_markdown({"a": snapshot_summary(a), "b": snapshot_summary(a)}, "model")
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| model | median d")
    assert "d ≤" not in lines[0] and "| 50.0% |" in lines[2]  # half the gradients near zero
    with_s = summary_markdown({"a": snapshot_summary(a, s=4.0)})
    assert "d ≤ 4" in with_s.splitlines()[0]
    with pytest.raises(ValueError, match="one threshold"):
        summary_markdown({"a": snapshot_summary(a, s=4.0), "b": snapshot_summary(a, s=2.0)})


def test_histogram_row_layout():
    from fewshot_utils.gradients import histogram_row

    d = 100 * torch.rand(6, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(3).repeat(2)
    snap = GradientSnapshot(0, d, distance_gradient(d, labels), labels, 1.0, 0.5)
    fig = histogram_row({"one": snap, "two": snap})
    assert len(fig.axes) == 2 and fig.axes[1].get_title().startswith("two")
    matplotlib.pyplot.close(fig)
