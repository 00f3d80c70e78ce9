"""TADAM: FiLM identity at gamma0 = beta0 = 0, TEN shapes and gradients, the auxiliary-task
schedule, the learned-alpha gradient, the L2 penalty, training with exact resume, evaluation over
the same episodes as evaluate_embeddings, and the errors (chapter 7's bookkeeping:
test_report_tadam.py)."""

import math

import pytest
import torch

from fewshot_utils.distances import protonet_loss, squared_euclidean
from fewshot_utils.episodes import query_labels, sample_episode
from fewshot_utils.evaluation import embed, evaluate_embeddings
from fewshot_utils.models import ResNet12
from fewshot_utils.tadam import (
    FILM_PENALTY,
    TadamConfig,
    TadamNet,
    TaskEmbeddingNetwork,
    alpha_gradient,
    aux_probability,
    downsample,
    evaluate_tadam,
    expected_aux_steps,
    lr_factor,
    measure_tadam_seconds,
    near_zero_fraction,
    train_tadam,
)

WIDTHS = (4, 6, 8, 10)


def _images(classes=10, per_class=8, side=16, seed=0):
    """uint8 RGB images whose class shifts the mean colour of a class-specific quadrant."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 160, (classes, per_class, 3, side, side), generator=g, dtype=torch.uint8)
    for c in range(classes):
        h = side // 2
        r, col = divmod(c % 4, 2)
        x[c, :, c % 3, r * h : (r + 1) * h, col * h : (col + 1) * h] += 90
    return x


def _net(tc=False, aux=None, learn_alpha=False, alpha=1.0, distance="squared_euclidean", seed=0):
    torch.manual_seed(seed)
    backbone = ResNet12(WIDTHS)
    ten = TaskEmbeddingNetwork(WIDTHS[-1], WIDTHS) if tc else None
    return TadamNet(backbone, distance, alpha, learn_alpha, ten, aux)


def _config(**kw):
    episodes = dict(way=3, shot=2, query=2, max_episodes=8, episodes_per_epoch=4, lr=0.05)
    validation = dict(val_way=3, val_query=2, val_episodes=4)
    return TadamConfig(**{**episodes, "aux_batch": 6, **validation, **kw})


# ------------------------------------------------------------------- task conditioning


def test_fresh_ten_is_the_identity():
    net = _net(tc=True)
    net.eval()
    task = torch.randn(1, WIDTHS[-1])
    film = net.ten(task)
    for b, block in enumerate(film):
        assert len(block) == 3
        for gamma, beta in block:
            assert gamma.shape == beta.shape == (1, WIDTHS[b])
            assert torch.equal(gamma, torch.ones_like(gamma))
            assert torch.equal(beta, torch.zeros_like(beta))
    x = _images()[:2, :3].flatten(0, 1)
    with torch.no_grad():
        assert torch.equal(net.embed(x, film), net.embed(x))
        ep = sample_episode(_images(), 3, 2, 2, torch.Generator().manual_seed(1))
        plain = _net(tc=False).eval()
        assert torch.allclose(
            net.episode_logits(ep.support, ep.query), plain.episode_logits(ep.support, ep.query)
        )


def test_ten_formula_and_gradients_at_zero():
    """gamma = 1 + gamma0 * h(task), beta = beta0 * g(task); at gamma0 = beta0 = 0 only the
    post-multipliers receive a gradient (the MLPs' is multiplied by 0)."""
    ten = TaskEmbeddingNetwork(5, (3, 4), units=2, layers=3)
    task = torch.randn(5)
    with torch.no_grad():
        ten.gamma0.copy_(torch.tensor([[0.5, -1.0], [2.0, 0.0]]))
        ten.beta0.copy_(torch.tensor([[1.5, 0.0], [-0.5, 3.0]]))
    film = ten(task)
    for b in range(2):
        for u in range(2):
            gamma, beta = film[b][u]
            h = ten.h[b][u](task[None])
            g = ten.g[b][u](task[None])
            assert torch.allclose(gamma, 1 + ten.gamma0[b, u] * h)
            assert torch.allclose(beta, ten.beta0[b, u] * g)
    # the residual MLP by hand: fc0 -> act, (fc1 + in) -> act, fc2 + in
    mlp = ten.h[1][0]
    z = torch.nn.functional.silu(mlp.fcs[0](task))
    z = torch.nn.functional.silu(mlp.fcs[1](z) + z)
    assert torch.allclose(mlp(task), mlp.fcs[2](z) + z)

    fresh = TaskEmbeddingNetwork(5, (3, 4), units=2)
    film = fresh(task)
    loss = sum((g * torch.arange(g.shape[1])).sum() + b.sum() for blk in film for g, b in blk)
    loss.backward()
    assert fresh.gamma0.grad.abs().min() > 0 and fresh.beta0.grad.abs().min() > 0
    assert all(p.grad.abs().max() == 0 for p in fresh.h.parameters())


def test_penalty_value():
    ten = TaskEmbeddingNetwork(4, (2, 3), units=3)
    assert ten.penalty().item() == 0.0
    with torch.no_grad():
        ten.gamma0.fill_(0.3)
        ten.beta0.copy_(torch.arange(6.0).view(2, 3))
    expected = FILM_PENALTY * 0.5 * (6 * 0.3**2 + sum(i * i for i in range(6)))
    assert ten.penalty().item() == pytest.approx(expected)
    assert _net().penalty().item() == 0.0


def test_ten_errors():
    ten = TaskEmbeddingNetwork(4, (2, 3))
    with pytest.raises(ValueError, match=r"\[4\] or \[1, 4\]"):
        ten(torch.randn(2, 4))
    with pytest.raises(ValueError, match="penalty_weight"):
        TaskEmbeddingNetwork(4, (2,), penalty_weight=-1)
    with pytest.raises(ValueError, match="takes 4-d tasks"):
        TadamNet(ResNet12(WIDTHS), ten=ten)
    with pytest.raises(ValueError, match="unknown distance"):
        TadamNet(ResNet12(WIDTHS), distance="manhattan")
    with pytest.raises(ValueError, match="alpha"):
        TadamNet(ResNet12(WIDTHS), alpha=0.0)
    with pytest.raises(ValueError, match="feature_dim"):
        TadamNet(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match="no task embedding network"):
        _net().task_film(torch.randn(3, 2, WIDTHS[-1]))
    with pytest.raises(ValueError, match="no auxiliary head"):
        _net().aux_logits(_images()[0])


# ------------------------------------------------------------------- schedules


def test_aux_probability_follows_the_paper():
    total = 1000
    assert aux_probability(0, total) == 1.0
    assert aux_probability(500, total) == pytest.approx(0.9**10)
    assert aux_probability(1000, total) == pytest.approx(0.9**20)
    assert aux_probability(123, total) == pytest.approx(math.exp(20 * 123 / 1000 * math.log(0.9)))
    # the official code: 20 stages of total // 20 steps, from 0.9
    assert aux_probability(0, total, staircase=True) == pytest.approx(0.9)
    assert aux_probability(49, total, staircase=True) == pytest.approx(0.9)
    assert aux_probability(50, total, staircase=True) == pytest.approx(0.81)
    assert aux_probability(999, total, staircase=True) == pytest.approx(0.9**20)
    # geometric sum: sum_t r^(20 t / T) = (1 - r^20) / (1 - r^(20 / T))
    r = 0.9
    assert expected_aux_steps(total) == pytest.approx((1 - r**20) / (1 - r ** (20 / total)))
    with pytest.raises(ValueError, match="total >= 1"):
        aux_probability(0, 0)
    with pytest.raises(ValueError, match="rate"):
        aux_probability(0, 10, rate=1.5)


def test_lr_factor_is_the_official_piecewise_schedule():
    total = 30_000
    assert lr_factor(0, total) == 1.0 and lr_factor(14_999, total) == 1.0
    assert lr_factor(15_000, total) == pytest.approx(0.1)
    assert lr_factor(17_499, total) == pytest.approx(0.1)
    assert lr_factor(17_500, total) == pytest.approx(0.01)
    assert lr_factor(20_000, total) == pytest.approx(0.001)
    assert lr_factor(29_999, total) == pytest.approx(0.001)
    with pytest.raises(ValueError):
        lr_factor(-1, total)


# ------------------------------------------------------------------- metric scaling


@pytest.mark.parametrize("alpha", [0.01, 0.3, 1.0, 7.5])
def test_alpha_gradient_matches_autograd_and_finite_differences(alpha):
    g = torch.Generator().manual_seed(3)
    d = squared_euclidean(
        torch.randn(12, 6, generator=g, dtype=torch.float64),
        torch.randn(4, 6, generator=g, dtype=torch.float64),
    )
    labels = torch.randint(0, 4, (12,), generator=g)

    def loss(a):
        return protonet_loss(-a * d, labels)[0]

    a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(loss(a), a)
    closed = alpha_gradient(d, labels, alpha)
    h = 1e-6
    fd = (
        loss(torch.tensor(alpha + h, dtype=torch.float64))
        - loss(torch.tensor(alpha - h, dtype=torch.float64))
    ) / (2 * h)
    assert closed.item() == pytest.approx(auto.item(), rel=1e-9, abs=1e-12)
    assert closed.item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-8)


def test_learned_alpha_receives_the_closed_form_gradient():
    net = _net(learn_alpha=True, alpha=0.7)
    ep = sample_episode(_images(), 3, 2, 2, torch.Generator().manual_seed(0))
    logits = net.episode_logits(ep.support, ep.query)
    labels = query_labels(3, 2)
    protonet_loss(logits, labels)[0].backward()
    d = -logits.detach() / 0.7
    # alpha = exp(log_alpha): dL/dlog_alpha = alpha * dL/dalpha
    expected = 0.7 * alpha_gradient(d, labels, 0.7).item()
    assert net.log_alpha.grad.item() == pytest.approx(expected, rel=1e-4)
    assert net.alpha.item() == pytest.approx(0.7)
    assert "log_alpha" in dict(net.named_parameters())
    fixed = _net(alpha=0.1)
    assert not any("alpha" in n for n, _ in fixed.named_parameters())
    assert fixed.state_dict()["fixed_alpha"].item() == pytest.approx(0.1)
    assert fixed.alpha.item() == pytest.approx(0.1)


def test_near_zero_fraction():
    d = torch.tensor([[0.0, 30.0, 2.0], [5.0, 0.0, 40.0]])
    labels = torch.tensor([0, 2])
    for alpha in (0.1, 1.0, 10.0):
        p = torch.softmax(-alpha * d, -1)
        g = torch.nn.functional.one_hot(labels, 3) - p
        expected = (g.abs() < 1e-5).double().mean().item()
        assert near_zero_fraction(d, labels, alpha) == pytest.approx(expected)
    assert near_zero_fraction(d, labels, 10.0) > near_zero_fraction(d, labels, 0.1)
    assert math.isnan(near_zero_fraction(d, labels, -1.0))


def test_downsample():
    x = torch.randint(0, 256, (2, 3, 3, 8, 8), dtype=torch.uint8)
    y = downsample(x, 4, chunk=2)
    ref = x.float().view(2, 3, 3, 4, 2, 4, 2).mean((4, 6)).round().to(torch.uint8)
    assert y.shape == (2, 3, 3, 4, 4) and y.dtype == torch.uint8 and torch.equal(y, ref)
    with pytest.raises(ValueError, match="uint8"):
        downsample(x.float(), 4)
    with pytest.raises(ValueError, match="size"):
        downsample(x, 9)


# ------------------------------------------------------------------- training


def test_training_runs_all_parts_and_records_history():
    data = _images()
    net = _net(tc=True, aux=6, learn_alpha=True)
    res = train_tadam(
        net, data[:6], data[6:], _config(max_episodes=12), device="cpu", progress=False
    )
    h = res.history
    assert h["episode"] == [4, 8, 12]
    assert len(h["alpha"]) == 3 and h["alpha"][-1] != 1.0  # alpha learned
    assert sum(h["aux_steps"]) >= 1 and all(0 <= a <= 4 for a in h["aux_steps"])
    assert all(0 <= f <= 1 for f in h["near_zero"])
    assert h["lr"][0] == pytest.approx(0.05) and h["lr"][-1] == pytest.approx(0.05 * 0.001)
    assert net.ten.gamma0.abs().sum() > 0  # the TEN left the identity
    assert res.episodes_done == 12 and res.episodes_per_s > 0


def test_auxiliary_task_does_not_change_the_episodes(monkeypatch):
    """The auxiliary draws use their own generator: with and without an auxiliary head a run
    meets the same episodes."""
    import fewshot_utils.tadam as tadam

    seen = {"plain": [], "aux": []}
    current = []
    real = tadam.sample_episode

    def spy(data, way, shot, query, gen):
        ep = real(data, way, shot, query, gen)
        seen[current[-1]].append(ep.classes.tolist())
        return ep

    monkeypatch.setattr(tadam, "sample_episode", spy)
    data = _images()
    for key, aux in (("plain", None), ("aux", 6)):
        current.append(key)
        train_tadam(_net(aux=aux), data[:6], data[6:], _config(), device="cpu", progress=False)
    assert len(seen["plain"]) == 8 and seen["plain"] == seen["aux"]


def test_interrupted_run_resumes_to_identical_weights(tmp_path, interrupted, assert_same_run):
    data = _images()
    cfg = _config(max_episodes=12)

    def net(seed=0):
        return _net(tc=True, aux=6, learn_alpha=True, seed=seed)

    ref = train_tadam(
        net(), data[:6], data[6:], cfg, tmp_path / "ref.pt", device="cpu", progress=False
    )
    args = (data[:6], data[6:], cfg, tmp_path / "run.pt")
    interrupted(train_tadam, 2, net(), *args, device="cpu", progress=False)
    torch.manual_seed(123)  # resuming must restore every random state itself
    res = train_tadam(net(seed=5), *args, device="cpu", progress=False)
    assert res.resumed and not res.loaded
    assert_same_run(res, ref)
    assert train_tadam(net(), *args, device="cpu", progress=False).loaded


def test_checkpoint_mismatch_and_retrain(tmp_path):
    data = _images()
    path = tmp_path / "c.pt"

    def train(net, cfg, retrain=False):
        return train_tadam(net, data[:6], data[6:], cfg, path, retrain, "cpu", progress=False)

    train(_net(), _config())
    with pytest.raises(ValueError, match="model.learn_alpha"):
        train(_net(learn_alpha=True), _config())
    with pytest.raises(ValueError, match="config.lr"):
        train(_net(), _config(lr=0.01))
    assert not train(_net(), _config(lr=0.01), retrain=True).loaded
    path.write_bytes(b"truncated")
    with pytest.raises(RuntimeError, match="unreadable"):
        train(_net(), _config())


def test_training_errors():
    data = _images()
    with pytest.raises(ValueError, match="auxiliary head has 64 classes"):
        train_tadam(_net(aux=64), data[:6], data[6:], _config(), device="cpu", progress=False)
    with pytest.raises(ValueError, match="exceeds"):
        train_tadam(
            _net(), data[:6], data[6:], _config(shot=5, query=5), device="cpu", progress=False
        )
    with pytest.raises(ValueError, match="multiple"):
        _config(max_episodes=10, episodes_per_epoch=4)
    with pytest.raises(ValueError, match="select_on"):
        _config(select_on="auc")


def test_mixed_precision_path_runs_on_cpu():
    data = _images()
    res = train_tadam(
        _net(tc=True, aux=6), data[:6], data[6:], _config(amp=True), device="cpu", progress=False
    )
    assert all(math.isfinite(v) for v in res.history["train_loss"])


def test_measure_leaves_the_model_untouched():
    net = _net(tc=True, aux=6)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    m = measure_tadam_seconds(net, _images()[:6], _config(), episodes=1, device="cpu")
    assert m["episode_s"] > 0 and m["aux_s"] > 0
    assert m["predicted_s"] == pytest.approx(
        8 * m["episode_s"] + m["expected_aux_steps"] * m["aux_s"]
    )
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# ------------------------------------------------------------------- evaluation


@pytest.mark.parametrize("distance", ["squared_euclidean", "cosine"])
def test_per_episode_evaluation_meets_the_same_episodes(distance):
    """Without a TEN, embedding each episode on its own gives what evaluate_embeddings gives
    over cached embeddings: same episodes, same accuracies."""
    net = _net(alpha=3.0, distance=distance).eval()
    data = _images()
    slow = evaluate_tadam(net, data, 3, 2, 4, episodes=25, seed=4, device="cpu", per_episode=True)
    with torch.no_grad():  # the network's own forward, as the per-episode path runs it
        emb = net.embed(data.flatten(0, 1)).view(*data.shape[:2], -1)
    ref = evaluate_embeddings(emb, 3, 2, 4, 25, 4, distance, 3.0)
    assert torch.equal(slow.per_episode, ref.per_episode)
    assert slow.loss == pytest.approx(ref.loss, rel=1e-4)
    # the fast path goes through evaluation.embed (which may run an inference copy, equal to
    # rounding): the same episodes, so the same accuracies but for near-ties
    fast = evaluate_tadam(net, data, 3, 2, 4, episodes=25, seed=4, device="cpu")
    ref_embed = evaluate_embeddings(embed(net, data, device="cpu"), 3, 2, 4, 25, 4, distance, 3.0)
    assert torch.equal(fast.per_episode, ref_embed.per_episode)
    assert (fast.per_episode == slow.per_episode).float().mean() >= 0.9


def test_task_conditioned_evaluation():
    net = _net(tc=True)
    with torch.no_grad():
        net.ten.gamma0.fill_(0.5)
        net.ten.beta0.fill_(0.5)
    res = evaluate_tadam(net, _images(), 3, 2, 4, episodes=6, seed=0, device="cpu")
    assert res.episodes == 6 and 0 <= res.accuracy <= 1 and net.training
    with pytest.raises(ValueError, match="per episode"):
        evaluate_tadam(net, _images(), 3, 2, 4, episodes=6, device="cpu", per_episode=False)


def test_film_multipliers_get_their_own_penalty_not_weight_decay():
    """gamma0 and beta0 are matrices, but their decay is FILM_PENALTY alone: weight decay
    applies to convolution and linear weights only (every other parameter: none)."""
    from fewshot_utils.tadam import _optimisers

    net = _net(tc=True, aux=10)
    parts = _optimisers(net, _config(), torch.device("cpu"), False)
    names = {id(p): n for n, p in net.named_parameters()}
    for opt in (parts["opt"], parts["aux_opt"]):
        for group in opt.param_groups:
            for p in group["params"]:
                name = names[id(p)]
                film = name.endswith(("gamma0", "beta0"))
                head = name.startswith("aux_head")  # the auxiliary head: no decay either
                want = 5e-4 if p.dim() > 1 and not (film or head) else 0.0
                assert group["weight_decay"] == want, name
    decayed = {
        names[id(p)] for g in parts["opt"].param_groups if g["weight_decay"] for p in g["params"]
    }
    assert not {n for n in decayed if n.endswith(("gamma0", "beta0"))}
    assert any(n.endswith("gamma0") for n in names.values())  # the TEN is there
    assert net.describe()["film_decay"] == "own penalty only"
