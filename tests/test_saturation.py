"""fewshot_utils.saturation: each result checked against autograd, Monte Carlo sampling or an
independent closed form, plus the error messages on bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from fewshot_utils.distances import protonet_logits, protonet_loss, prototypes
from fewshot_utils.saturation import (
    area_boundaries,
    area_two_width,
    classify_areas,
    distance_gradient,
    expected_squared_distance,
    gaussian_squared_distance_std,
    lemma1_limit_weights,
    relu_gaussian_moments,
    saturated_sparsity,
    sparsity,
    two_prototype_example,
)

LOGIT_LIMIT = math.log(0.99 / 0.01)  # |d0 - d1| at the area boundaries when eps = 0.01


def _random_episode(seed, way=5, shot=2, n_query=3, dim=16, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    support = scale * torch.randn(way, shot, dim, generator=g, dtype=torch.float64)
    query = scale * torch.randn(way * n_query, dim, generator=g, dtype=torch.float64)
    labels = torch.arange(way).repeat_interleave(n_query)
    return support, query, labels


# ------------------------------------------------------------------- distance_gradient


@pytest.mark.parametrize("alpha", [1.0, 0.01, 7.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_gradient_matches_autograd_of_the_protonet_loss(seed, alpha):
    support, query, labels = _random_episode(seed, dim=64, scale=0.3 + seed)
    d = torch.cdist(query, prototypes(support)).pow(2).requires_grad_()
    loss, _ = protonet_loss(-alpha * d, labels)  # the mean over N queries
    loss.backward()
    expected = distance_gradient(d.detach(), labels, alpha) / len(labels)
    torch.testing.assert_close(d.grad, expected, rtol=0, atol=1e-12)


def test_distance_gradient_through_embeddings_matches_chain_rule():
    """End to end through protonet_logits: dl/dz_i = sum_k g_ik * 2 (z_i - c_k) / N."""
    support, query, labels = _random_episode(3, way=4, shot=3, dim=10)
    query.requires_grad_()
    support.requires_grad_()
    protos = prototypes(support)
    loss, _ = protonet_loss(protonet_logits(query, protos), labels)
    loss.backward()
    with torch.no_grad():
        d = ((query[:, None] - protos[None]) ** 2).sum(-1)  # independent of squared_euclidean
        g = distance_gradient(d, labels) / len(labels)
        dz = 2 * (g.sum(1, keepdim=True) * query - g @ protos)
        dc = 2 * (g.sum(0)[:, None] * protos - g.T @ query)
    torch.testing.assert_close(query.grad, dz)
    torch.testing.assert_close(support.grad, (dc / 3)[:, None].expand_as(support))


def test_distance_gradient_sign_range_and_batch_shape():
    g = torch.Generator().manual_seed(4)
    d = 50 * torch.rand(3, 7, 6, generator=g)
    labels = torch.randint(0, 6, (3, 7), generator=g)
    grad = distance_gradient(d, labels)
    assert grad.shape == (3, 7, 6)
    torch.testing.assert_close(grad.sum(-1), torch.zeros(3, 7), rtol=0, atol=1e-6)
    true = grad.gather(-1, labels[..., None]).squeeze(-1)
    assert (true >= 0).all() and (true <= 1).all()  # 1 - p_y: pulls the true prototype closer
    wrong = grad.masked_fill(F.one_hot(labels, 6).bool(), -0.5)
    assert (wrong <= 0).all() and (wrong >= -1).all()  # -p_k: pushes the others away


def test_distance_gradient_rejects_bad_input():
    d = torch.rand(4, 3)
    with pytest.raises(ValueError, match=r"labels must be shaped \(4,\)"):
        distance_gradient(d, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        distance_gradient(d, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="integer class indices"):
        distance_gradient(d, torch.zeros(4))
    with pytest.raises(ValueError, match="way >= 2"):
        distance_gradient(torch.rand(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        distance_gradient(d, torch.zeros(4, dtype=torch.long), alpha=0.0)


# ------------------------------------------------------------- sparsity and the areas


def test_sparsity_counts_magnitudes_below_threshold():
    grad = torch.tensor([0.0, -1e-6, 1e-5, -0.5, 1.0, 2e-6])
    assert sparsity(grad) == pytest.approx(3 / 6)
    assert sparsity(grad, threshold=1.0) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="empty"):
        sparsity(torch.zeros(0))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        sparsity(grad, threshold=0)


@pytest.mark.parametrize("way", [2, 5, 20])
def test_saturated_sparsity_bounds_sparsity_and_is_reached_when_scaled(way):
    g = torch.Generator().manual_seed(way)
    # 4 episodes of 30 queries; distances a random permutation of 0..way-1 (+ noise < 0.1),
    # so that every gap is > 0.8 and a scale of 1e4 saturates the softmax completely
    ranks = torch.rand(4, 30, way, generator=g).argsort(-1).double()
    d = ranks + 0.1 * torch.rand(4, 30, way, generator=g, dtype=torch.float64)
    labels = torch.randint(0, way, (4, 30), generator=g)
    for scale in (1.0, 10.0, 1e4):  # ceiling holds at every scale; reached when saturated
        for e in range(4):
            acc = (d[e].argmin(-1) == labels[e]).double().mean().item()
            grad = distance_gradient(scale * d[e], labels[e])
            ceiling = saturated_sparsity(acc, way)
            assert sparsity(grad) <= ceiling + 1e-12
            if scale == 1e4:
                assert sparsity(grad) == pytest.approx(ceiling, abs=1e-12)
    assert saturated_sparsity(1.0, 5) == 1.0 and saturated_sparsity(0.0, 5) == pytest.approx(0.6)
    with pytest.raises(ValueError, match=r"accuracy must be in \[0, 1\]"):
        saturated_sparsity(1.5, 5)
    with pytest.raises(ValueError, match="way must be >= 2"):
        saturated_sparsity(0.5, 1)


def test_classify_areas_boundaries_and_sign():
    grad = torch.tensor([0.0, 0.009, 0.011, 0.5, 0.989, 0.991, -0.995, -0.005, -0.3])
    assert classify_areas(grad, eps=0.01).tolist() == [3, 3, 2, 2, 2, 1, 1, 3, 2]
    assert classify_areas(grad, eps=0.2).tolist() == [3, 3, 3, 2, 1, 1, 1, 3, 2]
    with pytest.raises(ValueError, match=r"eps must be in \(0, 0.5\)"):
        classify_areas(grad, eps=0.5)


# ------------------------------------------------------------------ the toy of Fig. 1


def test_two_prototype_example_keeps_ratio_and_saturates():
    scales = torch.logspace(-1, 3, 9)
    for d0, d1, p_limit in ((1.0, 2.0, 1.0), (2.0, 1.0, 0.0)):
        toy = two_prototype_example(d0, d1, scales)
        torch.testing.assert_close(toy.d0 / toy.d1, torch.full_like(scales, d0 / d1).double())
        independent = torch.sigmoid(scales.double() * (d1 - d0))  # p0 for two classes
        torch.testing.assert_close(toy.p0, independent)
        torch.testing.assert_close(toy.grad_d0, 1 - independent)
        torch.testing.assert_close(toy.grad_d1, independent - 1)
        assert toy.p0[-1].item() == pytest.approx(p_limit, abs=1e-12)
        assert abs(toy.grad_d1[-1].item()) == pytest.approx(1 - p_limit, abs=1e-12)
        assert (toy.p0.diff() * (1 if p_limit else -1) >= 0).all(), "monotone towards the limit"
        assert abs(toy.p0[0].item() - 0.5) < 0.05, "small scales: p0 near 1/2 whatever the ratio"
    with pytest.raises(ValueError, match="distances must be >= 0"):
        two_prototype_example(-1.0, 1.0, scales)
    with pytest.raises(ValueError, match="scale factors must be > 0"):
        two_prototype_example(1.0, 2.0, torch.tensor([1.0, 0.0]))


def test_area_boundaries_match_closed_form_and_gradient_levels():
    d1 = torch.tensor([5.0, 10.0, 100.0, 1000.0, 1e5], dtype=torch.float64)
    saturated, linear = area_boundaries(d1, eps=0.01)
    # dl/dd0 = sigmoid(d0 - d1), so the levels eps and 1 - eps sit at d0 = d1 -+ log(99)
    torch.testing.assert_close(saturated, d1 - LOGIT_LIMIT, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(linear, d1 + LOGIT_LIMIT, rtol=1e-10, atol=1e-9)
    # the gradient of the toy at the two edges is eps and 1 - eps
    lo, hi = area_boundaries(50.0, eps=0.05)
    grad_at = lambda d0: two_prototype_example(d0, 50.0, torch.ones(1)).grad_d0.item()  # noqa: E731
    assert grad_at(lo.item()) == pytest.approx(0.05, rel=1e-9)
    assert grad_at(hi.item()) == pytest.approx(0.95, rel=1e-9)


def test_area_two_width_shrinks_like_two_logit_over_d1():
    d1 = torch.tensor([10.0, 100.0, 1000.0, 1e4], dtype=torch.float64)
    width = area_two_width(d1, eps=0.01)
    torch.testing.assert_close(width, torch.log((d1 + LOGIT_LIMIT) / (d1 - LOGIT_LIMIT)))
    assert (width.diff() < 0).all()
    torch.testing.assert_close(
        width[-1] * d1[-1], torch.tensor(2 * LOGIT_LIMIT).double(), rtol=1e-3, atol=0
    )
    # small d1: even d0 = 0 keeps a gradient 1 - sigmoid(d1) > eps, no area III
    sat, _ = area_boundaries(torch.tensor([1.0, 4.0]), eps=0.01)
    assert sat.tolist() == [0.0, 0.0]
    assert torch.isinf(area_two_width(torch.tensor([4.0]))).all()
    with pytest.raises(ValueError, match="d1 must be > 0"):
        area_boundaries(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"eps must be in \(0, 0.5\)"):
        area_boundaries(1.0, eps=0.0)


# -------------------------------------------------------------------- random vectors


@pytest.mark.parametrize(
    ("dim", "var_x", "var_y", "mean_gap"), [(64, 1.0, 1.0, 0.0), (576, 0.5, 2.0, 0.3)]
)
def test_expected_squared_distance_and_std_match_sampling(dim, var_x, var_y, mean_gap):
    g = torch.Generator().manual_seed(5)
    n = 20_000
    x = mean_gap + var_x**0.5 * torch.randn(n, dim, generator=g, dtype=torch.float64)
    y = var_y**0.5 * torch.randn(n, dim, generator=g, dtype=torch.float64)
    d = ((x - y) ** 2).sum(1)
    mean = expected_squared_distance(dim, var_x, var_y, mean_gap)
    assert d.mean().item() == pytest.approx(mean, rel=0.01)
    if mean_gap == 0:
        assert d.std().item() == pytest.approx(
            gaussian_squared_distance_std(dim, var_x, var_y), rel=0.03
        )


def test_expected_squared_distance_is_linear_in_dim_and_accepts_tensors():
    dims = torch.tensor([1.0, 10.0, 1600.0])
    torch.testing.assert_close(expected_squared_distance(dims), 2 * dims)
    torch.testing.assert_close(gaussian_squared_distance_std(dims), (8 * dims).sqrt())
    with pytest.raises(ValueError, match="dimension must be >= 1"):
        expected_squared_distance(0)
    with pytest.raises(ValueError, match="dimension must be >= 1"):
        gaussian_squared_distance_std(torch.tensor([3.0, -1.0]))
    with pytest.raises(ValueError, match="variances must be >= 0"):
        expected_squared_distance(3, var_x=-1.0)


def test_relu_gaussian_moments_match_sampling():
    g = torch.Generator().manual_seed(6)
    x = torch.relu(2.0 * torch.randn(1_000_000, generator=g, dtype=torch.float64))
    mean, var = relu_gaussian_moments(2.0)
    assert x.mean().item() == pytest.approx(mean, rel=0.01)
    assert x.var().item() == pytest.approx(var, rel=0.01)
    with pytest.raises(ValueError, match="std must be > 0"):
        relu_gaussian_moments(0.0)


# ------------------------------------------------------------------------- Lemma 1


def test_lemma1_limit_weights_values():
    d = torch.tensor([[3.0, 1.0, 2.0, 9.0], [0.5, 4.0, 2.0, 1.0]])
    labels = torch.tensor([0, 0])
    small, large = lemma1_limit_weights(d, labels)
    torch.testing.assert_close(small, torch.tensor([[0.75, -0.25, -0.25, -0.25]] * 2))
    # query 0 is nearest to prototype 1 (wrong): +1 on the true, -1 on prototype 1;
    # query 1 is nearest to its own prototype: the weights cancel
    torch.testing.assert_close(large, torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="labels must be shaped"):
        lemma1_limit_weights(d, torch.tensor([0]))


def test_lemma1_limits_are_reached_by_the_scaled_gradient():
    """(1/alpha) dJ/dphi of a linear embedding phi converges to both limits of Lemma 1."""
    support, query, labels = _random_episode(7, way=5, shot=1, n_query=4, dim=8)
    phi = torch.randn(8, 8, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    phi.requires_grad_()

    def distances_and_grads(alpha):
        protos = prototypes(support @ phi)
        logits = protonet_logits(query @ phi, protos, scale=alpha)
        loss, _ = protonet_loss(logits, labels)
        (grad,) = torch.autograd.grad(len(labels) * loss, phi)  # J = sum over the queries
        return -logits.detach() / alpha, grad / alpha

    d, _ = distances_and_grads(1.0)
    small, large = lemma1_limit_weights(d, labels)
    assert large.abs().sum() > 0, "need a misclassified query for a non-trivial limit"

    def weighted(w):  # sum_ik w_ik dd_ik/dphi, by autograd with w as the output gradient
        protos = prototypes(support @ phi)
        dist = -protonet_logits(query @ phi, protos)
        return torch.autograd.grad(dist, phi, grad_outputs=w)[0]

    g_small, g_large = weighted(small), weighted(large)
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()  # noqa: E731
    errors_small = [rel(distances_and_grads(a)[1], g_small) for a in (1e-4, 1e-6, 1e-8)]
    errors_large = [rel(distances_and_grads(a)[1], g_large) for a in (1.0, 10.0, 1e3)]
    # alpha -> 0: p - 1/K is O(alpha), so the error falls 100-fold per 100-fold smaller alpha
    assert errors_small[0] / errors_small[1] > 50 and errors_small[1] / errors_small[2] > 50
    assert errors_small[2] < 1e-4
    assert errors_large[0] > errors_large[2] and errors_large[2] < 1e-8
    # and at every alpha, (1/alpha) dJ/dphi is exactly the gradient weighted by onehot - p
    for a in (0.1, 3.0):
        w = distance_gradient(d, labels, a) / a
        torch.testing.assert_close(distances_and_grads(a)[1], weighted(w))


def test_episode_statistics_against_a_hand_count():
    from fewshot_utils.saturation import episode_statistics

    d = torch.tensor([[1.0, 3.0, 8.0], [2.0, 4.0, 9.0]], dtype=torch.float64)
    labels = torch.tensor([0, 2])  # query 0 right (nearest is 0), query 1 wrong (nearest is 0)
    grad = torch.tensor([[0.0, 0.5, 1e-7], [-0.995, 0.2, 0.999]], dtype=torch.float64)
    s = episode_statistics(d, grad, labels, dim=4)
    assert s["mean d"] == pytest.approx(27 / 6)
    assert s["median d"] == 3.0  # torch's median: the lower of the two middle values
    assert s["d / D"] == pytest.approx(27 / 24)
    assert s["accuracy"] == 0.5
    assert s["ceiling"] == pytest.approx(1 - 2 * 0.5 / 3)
    assert s["sparsity"] == pytest.approx(2 / 6)  # 0.0 and 1e-7
    assert (s["I"], s["II"], s["III"]) == pytest.approx((2 / 6, 2 / 6, 2 / 6))
    assert s["sparsity true"] == 0.5  # the true prototypes' gradients: 0.0 and 0.999


def test_episode_statistics_rejects_a_batch_of_episodes():
    from fewshot_utils.saturation import episode_statistics

    with pytest.raises(ValueError, match="one episode's distances"):
        episode_statistics(torch.ones(2, 3, 4), torch.ones(2, 3, 4), torch.zeros(2, 3).long(), 4)
