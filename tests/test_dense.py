"""Dense classification (stage 1): cosine classifier, losses, batch training with resume,
few-shot tests over pooled / dense queries against independent loops, activation maps."""

import math

import pytest
import torch
import torch.nn.functional as F

from fewshot_utils.dense import (
    BatchTrainConfig,
    CosineClassifier,
    FewShotMaps,
    _next_batch,
    activation_maps,
    dense_scores,
    evaluate_poolings,
    global_pool,
    measure_iterations_per_s,
    stage1_loss,
    train_classifier,
)
from fewshot_utils.episodes import sample_indices
from fewshot_utils.evaluation import embed, wilson
from fewshot_utils.models import ResNet12


def _tiny_net(seed=0):
    torch.manual_seed(seed)
    return ResNet12(widths=(4, 4, 8, 8))


def _coloured_data(classes=4, per_class=12, size=32, seed=0):
    """Class k: noise around a class-specific colour, so a network can learn it quickly."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(classes, 1, 3, 1, 1, generator=g) * 200 + 20
    noise = torch.randn(classes, per_class, 3, size, size, generator=g) * 20
    return (base + noise).clamp(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- classifier


def test_cosine_classifier_against_cosine_similarity():
    torch.manual_seed(0)
    clf = CosineClassifier(6, 5, tau=7.0)
    x = torch.randn(3, 6)
    ref = 7.0 * F.cosine_similarity(x[:, None], clf.weight[None], dim=-1)
    torch.testing.assert_close(clf(x), ref)
    fmap = torch.randn(3, 6, 2, 4)
    dense = clf(fmap)
    assert dense.shape == (3, 5, 2, 4)
    for i in range(2):
        for j in range(4):
            torch.testing.assert_close(dense[:, :, i, j], clf(fmap[:, :, i, j]))
    with pytest.raises(ValueError, match=r"expected features \[B, d\]"):
        clf(torch.randn(2, 6, 3))


def test_tau_learnable_or_fixed():
    clf = CosineClassifier(4, 3, tau=10.0)
    clf(torch.randn(2, 4)).sum().backward()
    assert clf.tau.grad is not None and clf.tau.grad.abs() > 0
    fixed = CosineClassifier(4, 3, tau=10.0, learn_tau=False)
    assert "tau" not in dict(fixed.named_parameters()) and float(fixed.tau) == 10.0


def test_global_pool():
    x = torch.arange(24.0).view(1, 2, 3, 4)
    torch.testing.assert_close(global_pool(x, "gap"), torch.tensor([[5.5, 17.5]]))
    torch.testing.assert_close(global_pool(x, "gmp"), torch.tensor([[11.0, 23.0]]))
    with pytest.raises(ValueError, match="choose 'gap' or 'gmp'"):
        global_pool(x, "dc")


def test_dense_loss_is_mean_of_per_location_losses():
    torch.manual_seed(0)
    clf = CosineClassifier(5, 4)
    fmap = torch.randn(3, 5, 2, 3)
    y = torch.tensor([0, 3, 1])
    loss, acc = stage1_loss(fmap, clf, y, "dc")
    per_loc = [F.cross_entropy(clf(fmap[:, :, i, j]), y) for i in range(2) for j in range(3)]
    torch.testing.assert_close(loss, torch.stack(per_loc).mean())
    probs = torch.stack([clf(fmap[:, :, i, j]).softmax(1) for i in range(2) for j in range(3)])
    torch.testing.assert_close(acc, (probs.mean(0).argmax(1) == y).float().mean())
    gap_loss, _ = stage1_loss(fmap, clf, y, "gap")
    torch.testing.assert_close(gap_loss, F.cross_entropy(clf(fmap.mean((2, 3))), y))
    # a 1x1 map: dense classification, GAP and GMP are the same loss
    one = fmap[:, :, :1, :1]
    losses = [stage1_loss(one, clf, y, p)[0] for p in ("dc", "gap", "gmp")]
    torch.testing.assert_close(losses[0], losses[1])
    torch.testing.assert_close(losses[0], losses[2])
    with pytest.raises(ValueError, match="unknown pooling"):
        stage1_loss(fmap, clf, y, "avg")


def test_dense_scores():
    cos = torch.tensor([[[1.0, 0.0], [0.0, 0.5]]])  # 1 query, 2 locations, 2 classes
    tau = 3.0
    p1 = torch.tensor([3.0, 0.0]).softmax(0)
    p2 = torch.tensor([0.0, 1.5]).softmax(0)
    torch.testing.assert_close(dense_scores(cos, tau), ((p1 + p2) / 2)[None])


# --------------------------------------------------------------------------- training


def test_next_batch_covers_every_image_once_per_pass():
    g = torch.Generator().manual_seed(0)
    state = {"order": torch.randperm(10, generator=g), "position": 0}
    seen = torch.cat([_next_batch(state, 4, g) for _ in range(5)])  # 20 = two passes
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))
    assert not torch.equal(seen[:10], seen[10:]), "each pass is reshuffled"


@pytest.mark.parametrize("pooling", ["gap", "dc"])
def test_training_learns(pooling):
    data = _coloured_data()
    cfg = BatchTrainConfig(
        pooling=pooling,
        iterations=30,
        batch_size=16,
        lr=0.05,
        iterations_per_chunk=10,
        milestones=(0.8,),
    )
    res = train_classifier(_tiny_net(), data, cfg, device="cpu", progress=False)
    h = res.history
    assert h["iteration"] == [10, 20, 30] and h["images"][-1] == 480
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["train_acc"][-1] > 0.5  # chance is 0.25
    assert h["lr"][-1] == pytest.approx(0.005)
    assert h["tau"][-1] != 10.0, "tau is learnt"


class _Stop(Exception):
    pass


def test_resume_gives_the_uninterrupted_weights_and_finished_run_loads(tmp_path):
    data = _coloured_data()
    cfg = BatchTrainConfig(
        pooling="dc", iterations=6, batch_size=8, lr=0.05, iterations_per_chunk=2
    )
    full = train_classifier(_tiny_net(), data, cfg, device="cpu", progress=False)
    calls = []

    def crash_on_second(model, clf):
        calls.append(1)
        if len(calls) == 2:
            raise _Stop
        return 0.5

    ckpt = tmp_path / "run.pt"
    torch.manual_seed(123)  # resume must not depend on the RNG state when it restarts
    with pytest.raises(_Stop):
        train_classifier(
            _tiny_net(), data, cfg, ckpt, device="cpu", validate=crash_on_second, progress=False
        )
    resumed = train_classifier(_tiny_net(seed=5), data, cfg, ckpt, device="cpu", progress=False)
    assert resumed.resumed and not resumed.loaded and resumed.iterations_done == 6
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, msg=k)
    torch.testing.assert_close(resumed.classifier.weight, full.classifier.weight)
    loaded = train_classifier(_tiny_net(seed=9), data, cfg, ckpt, device="cpu", progress=False)
    assert loaded.loaded and loaded.history["train_loss"] == resumed.history["train_loss"]
    torch.testing.assert_close(loaded.classifier.tau, resumed.classifier.tau)
    other = BatchTrainConfig(pooling="gap", iterations=6, batch_size=8, iterations_per_chunk=2)
    with pytest.raises(ValueError, match="another configuration"):
        train_classifier(_tiny_net(), data, other, ckpt, device="cpu", progress=False)
    again = train_classifier(
        _tiny_net(), data, other, ckpt, retrain=True, device="cpu", progress=False
    )
    assert not again.loaded and again.iterations_done == 6


def test_amp_path_runs_on_cpu_and_rate_probe_leaves_model_alone():
    data = _coloured_data(per_class=4)
    cfg = BatchTrainConfig(
        pooling="dc", iterations=2, batch_size=4, amp=True, iterations_per_chunk=2
    )
    res = train_classifier(_tiny_net(), data, cfg, device="cpu", progress=False)
    assert torch.isfinite(torch.tensor(res.history["train_loss"])).all()
    net = _tiny_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert measure_iterations_per_s(net, data, cfg, iterations=1, device="cpu") > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_bad_config_and_data():
    with pytest.raises(ValueError, match="unknown pooling"):
        BatchTrainConfig(pooling="mean")
    with pytest.raises(ValueError, match="optimiser must be"):
        BatchTrainConfig(optimiser="rmsprop")
    with pytest.raises(ValueError, match="classes >= 2"):
        train_classifier(_tiny_net(), _coloured_data(classes=1), BatchTrainConfig(), device="cpu")


# --------------------------------------------------------------------------- testing


def _loop_accuracy(maps, classes, items, shot, sp, qp, tau):
    """Per-episode accuracy written with explicit loops, one query at a time."""
    accs = []
    for cls, its in zip(classes, items):
        protos = []
        for k, c in enumerate(cls):
            sup = [global_pool(maps[c, i], sp) for i in its[k, :shot]]
            protos.append(torch.stack(sup).mean(0))
        protos = torch.stack(protos)
        right = total = 0
        for k, c in enumerate(cls):
            for i in its[k, shot:]:
                m = maps[c, i]  # [d, h, w]
                if qp == "dc":
                    loc = m.flatten(1).t()  # [r, d]
                    cos = F.cosine_similarity(loc[:, None], protos[None], dim=-1)
                    score = (tau * cos).softmax(-1).mean(0)
                else:
                    score = F.cosine_similarity(global_pool(m, qp)[None], protos, dim=-1)
                right += int(score.argmax() == k)
                total += 1
        accs.append(right / total)
    return torch.tensor(accs)


@pytest.mark.parametrize(
    "combo", [("gap", "gap"), ("gap", "dc"), ("gmp", "gmp"), ("gmp", "dc"), ("gap", "gmp")]
)
def test_evaluate_poolings_matches_loops(combo):
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(7, 9, 6, 2, 3, generator=g) + torch.randn(7, 1, 6, 1, 1, generator=g)
    fs = FewShotMaps.from_maps(maps)
    res = evaluate_poolings(
        fs, way=3, shot=2, query=4, episodes=12, seed=3, combos=[combo], tau=5.0, max_chunk_bytes=1
    )
    classes, items = sample_indices(7, 9, 3, 6, torch.Generator().manual_seed(3), episodes=12)
    ref = _loop_accuracy(maps, classes, items, 2, *combo, tau=5.0)
    torch.testing.assert_close(res["novel"][combo].per_episode, ref)
    big = evaluate_poolings(fs, 3, 2, 4, 12, 3, [combo], 5.0)  # one chunk: same result
    torch.testing.assert_close(big["novel"][combo].per_episode, ref)


def test_base_and_both_classes_against_loops():
    g = torch.Generator().manual_seed(1)
    d, c = 6, 5
    weight = torch.randn(c, d, generator=g)
    # base held-out maps near their class weight; novel maps near random class centres
    base_maps = weight.view(c, 1, d, 1, 1) + 0.8 * torch.randn(c, 6, d, 2, 2, generator=g)
    novel_maps = torch.randn(6, 1, d, 1, 1, generator=g) + 0.8 * torch.randn(
        6, 8, d, 2, 2, generator=g
    )
    way, shot, query, tau = 3, 2, 3, 4.0
    res = evaluate_poolings(
        FewShotMaps.from_maps(novel_maps),
        way,
        shot,
        query,
        5,
        seed=0,
        combos=[("gap", "gap"), ("gap", "dc")],
        tau=tau,
        base=FewShotMaps.from_maps(base_maps),
        base_weight=weight,
    )
    ncls, nit = sample_indices(6, 8, way, shot + query, torch.Generator().manual_seed(0), 5)
    bcls, bit = sample_indices(c, 6, way, query, torch.Generator().manual_seed(1), 5)
    for qp in ("gap", "dc"):
        both_acc, halves = [], []
        for e in range(5):
            protos = torch.stack(
                [novel_maps[k, nit[e, j, :shot]].mean((0, 2, 3)) for j, k in enumerate(ncls[e])]
            )
            joint = torch.cat([weight, protos])
            j_right = 0
            queries = [
                (novel_maps[k, i], c + j) for j, k in enumerate(ncls[e]) for i in nit[e, j, shot:]
            ]
            queries += [(base_maps[k, i], int(k)) for j, k in enumerate(bcls[e]) for i in bit[e, j]]
            hits = [int(_score(m, joint, qp, tau).argmax() == t) for m, t in queries]
            j_right = sum(hits)
            both_acc.append(j_right / (2 * way * query))
            halves.append((sum(hits[: way * query]), sum(hits[way * query :])))
        torch.testing.assert_close(res["both"]["gap", qp].per_episode, torch.tensor(both_acc))
        # base: every held-out image once, among the base weights (no task involved)
        right = [
            int(_score(base_maps[k, i], weight, qp, tau).argmax() == k)
            for k in range(c)
            for i in range(6)
        ]
        b = res["base"]["gap", qp]
        assert (b.unit, b.episodes) == ("images", c * 6)
        torch.testing.assert_close(b.per_episode, torch.tensor(right, dtype=torch.float32))
        assert b.accuracy == pytest.approx(sum(right) / len(right))
        assert b.ci_low <= b.accuracy <= b.ci_high and b.ci95 == (b.ci_high - b.ci_low) / 2
        both = res["both"]["gap", qp]
        # a mean over the 5 tasks (not images); its interval: the novel and the base half,
        # each a proportion over its own images (6 x 8 novel, c x 6 base), weighted 1/2 each
        assert (both.unit, both.episodes, both.per_episode.numel()) == ("episodes", 5, 5)
        p_n = sum(h[0] for h in halves) / (5 * way * query)
        p_b = sum(h[1] for h in halves) / (5 * way * query)
        var = p_n * (1 - p_n) / (6 * 8) + p_b * (1 - p_b) / (c * 6)
        assert both.ci95 == pytest.approx(0.5 * 1.96 * var**0.5)
        assert both.ci_low == pytest.approx(max(0.0, both.accuracy - both.ci95))
        assert "48 novel and 30 base images" in both.interval
    assert res["base"]["gap", "gap"].accuracy > 0.8  # the base maps sit near their weights
    assert res["novel"]["gap", "dc"].shot == shot and res["novel"]["gap", "dc"].query == query


def _score(m, vs, qp, tau):
    if qp == "dc":
        cos = F.cosine_similarity(m.flatten(1).t()[:, None], vs[None], dim=-1)
        return (tau * cos).softmax(-1).mean(0)
    return F.cosine_similarity(m.mean((1, 2))[None], vs, dim=-1)


def _wilson_by_quadratic(k, n, z=1.96):
    """The Wilson interval as the two roots p of (k/n - p)^2 = z^2 p (1 - p) / n."""
    ph = k / n
    a, b, cc = 1 + z * z / n, -(2 * ph + z * z / n), ph * ph
    root = math.sqrt(b * b - 4 * a * cc)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def test_wilson_interval():
    for k, n in ((0, 10), (3, 10), (10, 10), (1234, 1920)):
        low, high = wilson(k, n)
        exp_low, exp_high = _wilson_by_quadratic(k, n)
        assert low == pytest.approx(max(exp_low, 0.0), abs=1e-12)
        assert high == pytest.approx(min(exp_high, 1.0), abs=1e-12)
    with pytest.raises(ValueError, match="correct <= n"):
        wilson(11, 10)


def test_evaluate_poolings_errors():
    fs = FewShotMaps.from_maps(torch.randn(4, 5, 3, 2, 2))
    with pytest.raises(ValueError, match="support pooling must be"):
        evaluate_poolings(fs, 2, 1, 1, 2, combos=[("dc", "dc")])
    with pytest.raises(ValueError, match="exceeds the 5 items"):
        evaluate_poolings(fs, 2, 3, 3, 2)
    with pytest.raises(ValueError, match="base_weight must be"):
        evaluate_poolings(fs, 2, 1, 1, 2, base=fs, base_weight=torch.randn(4, 7))
    with pytest.raises(ValueError, match="pass both"):
        evaluate_poolings(fs, 2, 1, 1, 2, base=fs)


def test_embed_keeps_the_maps_and_activation_maps():
    """evaluation.embed keeps a bare ResNet's feature map per image."""
    net = _tiny_net().eval()
    data = _coloured_data(classes=2, per_class=3, size=64)
    maps = embed(net, data, device="cpu")
    assert maps.shape == (2, 3, 8, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(maps[1, 2], net(data[1, 2:3])[0], rtol=1e-4, atol=1e-5)
    vectors = torch.randn(3, 8)
    imgs = data[:, 0]
    cams = torch.stack([activation_maps(net, imgs, vectors, torch.full((2,), k)) for k in range(3)])
    assert cams.shape == (3, 2, 4, 4)
    torch.testing.assert_close(cams.sum(0), torch.ones(2, 4, 4))  # probabilities over classes
    up = activation_maps(net, imgs, vectors, torch.tensor([0, 1]), size=64)
    assert up.shape == (2, 64, 64) and 0 <= up.min() and up.max() <= 1
