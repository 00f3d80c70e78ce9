import math

import pytest
import torch

from fewshot_utils.distances import (
    cosine_similarity,
    euclidean,
    lsed,
    lsed_inverse,
    protonet_logits,
    protonet_loss,
    prototypes,
    squared_euclidean,
)


def _pairwise_loop(x, y):
    return torch.tensor([[float(((a - b) ** 2).sum()) for b in y] for a in x], dtype=torch.float64)


def test_squared_euclidean_matches_loop_and_shape():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 13, generator=g), torch.randn(4, 13, generator=g)
    d = squared_euclidean(x, y)
    assert d.shape == (7, 4)
    torch.testing.assert_close(d.double(), _pairwise_loop(x, y), rtol=1e-5, atol=1e-5)


def test_squared_euclidean_batched_and_nonnegative_on_duplicates():
    g = torch.Generator().manual_seed(1)
    x = 1e3 * torch.randn(3, 5, 64, generator=g)
    d = squared_euclidean(x, x)
    assert d.shape == (3, 5, 5)
    assert (d >= 0).all()
    # rounding of the expansion stays far below the distances themselves
    off = d[:, ~torch.eye(5, dtype=torch.bool)]
    assert d.diagonal(dim1=-2, dim2=-1).max() < 1e-4 * off.min()


def test_euclidean_is_sqrt_with_finite_gradient_at_zero():
    x = torch.zeros(1, 3, requires_grad=True)
    y = torch.zeros(1, 3)
    euclidean(x, y).sum().backward()
    assert torch.isfinite(x.grad).all()
    a, b = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 0.0]])
    assert euclidean(a, b).item() == pytest.approx(5.0, abs=1e-5)


def test_lsed_piecewise_definition():
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    y = torch.zeros(1, 1)
    d = squared_euclidean(x, y).squeeze(1)  # 0, 1, 9, 100
    out = lsed(x, y, s=4.0, r=0.1).squeeze(1)
    expected = torch.tensor([0.0, 1.0, 4 + 0.5, 4 + 9.6])
    torch.testing.assert_close(out, expected)
    assert torch.equal(lsed(x, y, s=4.0, r=1.0), squared_euclidean(x, y))
    assert (out <= d).all()


def test_lsed_continuous_at_s_and_monotone():
    s, r = 4.0, 0.01
    t = torch.linspace(0, 10, 2001).unsqueeze(1)
    out = lsed(t, torch.zeros(1, 1), s=s, r=r).squeeze(1)
    assert (out.diff() >= 0).all()
    d = t.squeeze(1) ** 2
    near = (d - s).abs() < 1e-2
    assert (out[near] - s).abs().max() < 1e-2


def test_lsed_rejects_bad_parameters():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="r must be > 0"):
        lsed(x, x, s=0, r=0)
    with pytest.raises(ValueError, match="s must be >= 0"):
        lsed(x, x, s=-1, r=0.1)


def test_cosine_similarity_values():
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[2.0, 0.0], [0.0, -3.0]])
    expected = torch.tensor([[1.0, 0.0], [1 / math.sqrt(2), -1 / math.sqrt(2)]])
    torch.testing.assert_close(cosine_similarity(x, y), expected)


def test_distance_shape_errors():
    with pytest.raises(ValueError, match="rows of equal length"):
        squared_euclidean(torch.zeros(3, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="rows of equal length"):
        squared_euclidean(torch.zeros(4), torch.zeros(2, 4))


def test_prototypes_are_class_means():
    s = torch.arange(24.0).view(2, 3, 4)
    torch.testing.assert_close(prototypes(s), s.mean(1))
    with pytest.raises(ValueError, match=r"\[..., way, shot, d\]"):
        prototypes(torch.zeros(3, 4))


def test_logits_loss_accuracy():
    protos = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    q = torch.tensor([[1.0, 0.0], [9.0, 0.0], [4.0, 0.0]])
    logits = protonet_logits(q, protos)
    torch.testing.assert_close(logits, -torch.tensor([[1.0, 81.0], [81.0, 1.0], [16.0, 36.0]]))
    labels = torch.tensor([0, 1, 1])
    loss, acc = protonet_loss(logits, labels)
    ref = -torch.log_softmax(logits, 1)[torch.arange(3), labels].mean()
    torch.testing.assert_close(loss, ref)
    assert acc.item() == pytest.approx(2 / 3)
    scaled = protonet_logits(q, protos, scale=0.5)
    torch.testing.assert_close(scaled, 0.5 * logits)
    with pytest.raises(ValueError, match="unknown distance"):
        protonet_logits(q, protos, distance="manhattan")
    with pytest.raises(ValueError, match="need labels shaped"):
        protonet_loss(logits, torch.tensor([0, 1]))


def test_gradient_wrt_distances_is_p_minus_onehot():
    g = torch.Generator().manual_seed(3)
    d = (10 * torch.rand(6, 5, generator=g)).requires_grad_()
    labels = torch.randint(0, 5, (6,), generator=g)
    loss, _ = protonet_loss(-d, labels)
    loss.backward()
    p = torch.softmax(-d.detach(), 1)
    # l = d_y + log sum_k exp(-d_k), so dl/dd_j = 1{y=j} - p_j (per query; averaged over N).
    # The LSED paper's eq. 5 prints p_j - 1{y=j}: the same magnitudes, the opposite sign.
    expected = (torch.nn.functional.one_hot(labels, 5) - p) / 6
    torch.testing.assert_close(d.grad, expected)


@pytest.mark.parametrize("distance", ["squared_euclidean", "lsed"])
def test_loss_and_gradients_finite_at_huge_distances(distance):
    g = torch.Generator().manual_seed(4)
    z = (1e3 * torch.randn(10, 8, generator=g)).requires_grad_()  # distances ~ 1e6 and more
    protos = 1e3 * torch.randn(5, 8, generator=g)
    logits = protonet_logits(z, protos, distance)
    assert -logits.max() > 1e5 or distance == "lsed"
    loss, _ = protonet_loss(logits, torch.arange(10) % 5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("distance", ["squared_euclidean", "euclidean", "lsed", "cosine"])
def test_distances_are_float32_under_autocast(distance):
    # Features far from the origin: |x|^2 ~ 1e6 against squared distances ~ 100. In bfloat16
    # (what autocast gives the matrix product on a CPU) the expansion loses every digit.
    g = torch.Generator().manual_seed(0)
    centre = 100.0 * torch.randn(64, generator=g)
    x = centre + torch.randn(30, 64, generator=g)
    y = centre + torch.randn(5, 64, generator=g)
    kw = {"s": 4.0, "r": 0.01} if distance == "lsed" else {}
    ref = protonet_logits(x, y, distance, 0.5, **kw)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = protonet_logits(x.bfloat16(), y.bfloat16(), distance, 0.5, **kw)
        got_f32_inputs = protonet_logits(x, y, distance, 0.5, **kw)
    assert got.dtype == got_f32_inputs.dtype == torch.float32
    torch.testing.assert_close(got_f32_inputs, ref)
    assert torch.equal(got_f32_inputs.argmax(-1), ref.argmax(-1))
    # bfloat16 inputs carry their own rounding (8 bits of mantissa), the distance adds none
    torch.testing.assert_close(
        got, protonet_logits(x.bfloat16().float(), y.bfloat16().float(), distance, 0.5, **kw)
    )


def test_float64_inputs_stay_float64():
    x, y = torch.randn(3, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    assert squared_euclidean(x, y).dtype == torch.float64
    assert cosine_similarity(x, y).dtype == torch.float64


def test_lsed_inverse_gives_back_the_squared_distance():
    g = torch.Generator().manual_seed(3)
    x, y = 3 * torch.randn(9, 5, generator=g), torch.randn(4, 5, generator=g)
    d = squared_euclidean(x, y)
    for s, r in [(0.0, 0.01), (4.0, 0.01), (30.0, 0.1), (4.0, 1.0)]:
        back = lsed_inverse(lsed(x, y, s=s, r=r), s=s, r=r)
        torch.testing.assert_close(back, d, rtol=1e-4, atol=1e-3)
    # below s LSED is the identity, above it the inverse divides the excess by r
    vals = torch.tensor([1.0, 4.0, 4.5])
    torch.testing.assert_close(lsed_inverse(vals, s=4.0, r=0.1), torch.tensor([1.0, 4.0, 9.0]))
    with pytest.raises(ValueError, match="r must be > 0"):
        lsed_inverse(vals, s=4.0, r=0.0)
    with pytest.raises(ValueError, match="s must be >= 0"):
        lsed_inverse(vals, s=-1.0)
