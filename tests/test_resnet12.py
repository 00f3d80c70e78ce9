"""ResNet-12 (shared with TADAM) and C128F: shapes, an independent functional forward, FiLM."""

import pytest
import torch
import torch.nn.functional as F

from fewshot_utils.models import C128F, DATASET_STATS, ResNet12, activation_layer


def _images(n=3, size=84, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def _randomise_bn(model, seed=1):
    """Non-trivial BN statistics and affine parameters, so eval mode is a real test."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _reference_forward(model, x, film=None):
    """ResNet-12 written out with torch.nn.functional, from the model's parameters."""
    mean, std = DATASET_STATS["miniimagenet"]
    h = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)

    def bn(t, m):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    for b, blk in enumerate(model.blocks):
        inp, t = h, h
        for i, (conv, norm) in enumerate(
            [(blk.conv1, blk.bn1), (blk.conv2, blk.bn2), (blk.conv3, blk.bn3)]
        ):
            t = bn(F.conv2d(t, conv.weight, padding=1), norm)
            if film is not None:
                g, be = film[b][i]
                t = g.view(g.shape[0] if g.dim() == 2 else 1, -1, 1, 1) * t + be.view(
                    be.shape[0] if be.dim() == 2 else 1, -1, 1, 1
                )
            if i < 2:
                t = t * torch.sigmoid(t)
        s = bn(F.conv2d(inp, blk.shortcut[0].weight), blk.shortcut[1])
        t = t + s
        h = F.max_pool2d(t * torch.sigmoid(t), 2)
    return h


def test_shapes_and_feature_dim():
    m = ResNet12()
    assert m.feature_dim == 512
    assert m(_images(2)).shape == (2, 512, 5, 5)
    assert m(_images(2, size=32)).shape == (2, 512, 2, 2)
    narrow = ResNet12(widths=(8, 16, 24, 32))
    assert narrow.feature_dim == 32 and narrow(_images(1)).shape == (1, 32, 5, 5)
    assert C128F()(_images(2)).shape == (2, 128, 5, 5)
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert len(convs) == 16 and all(c.bias is None for c in convs)  # 12 3x3 + 4 shortcuts
    assert sum(c.kernel_size == (3, 3) for c in convs) == 12


def test_matches_functional_reference_in_eval_mode():
    torch.manual_seed(0)
    m = ResNet12(widths=(8, 16, 24, 32)).eval()
    _randomise_bn(m)
    x = _images(3)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _reference_forward(m, x), rtol=1e-4, atol=1e-5)


def test_uint8_and_float_input_agree():
    m = ResNet12(widths=(8, 8, 8, 8)).eval()
    x = _images(2)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(x.float()))
    with pytest.raises(ValueError, match=r"expected images \[n, 3, h, w\]"):
        m(torch.zeros(2, 1, 84, 84))


def test_activation_choice():
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(activation_layer("swish")(x), x * torch.sigmoid(x))
    torch.testing.assert_close(activation_layer("relu")(x), x.clamp(min=0))
    with pytest.raises(ValueError, match="choose 'swish' or 'relu'"):
        ResNet12(activation="gelu")
    torch.manual_seed(0)
    a = ResNet12(widths=(8, 8, 8, 8), activation="relu").eval()
    torch.manual_seed(0)
    b = ResNet12(widths=(8, 8, 8, 8), activation="swish").eval()
    with torch.no_grad():
        assert not torch.allclose(a(_images(1)), b(_images(1)))


def _film(model, batch=None, value=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for w in model.widths:
        shape = (w,) if batch is None else (batch, w)
        if value is None:
            pairs = [
                (1 + 0.3 * torch.randn(shape, generator=g), 0.2 * torch.randn(shape, generator=g))
                for _ in range(3)
            ]
            out.append(pairs)
        else:
            out.append([(torch.full(shape, value[0]), torch.full(shape, value[1]))] * 3)
    return out


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("batch", [None, 1, 3])
def test_identity_film_reproduces_no_film_exactly(train, batch):
    torch.manual_seed(0)
    m = ResNet12(widths=(8, 16, 24, 32)).train(train)
    _randomise_bn(m)
    x = _images(3)
    with torch.no_grad():
        assert torch.equal(m(x, film=_film(m, batch, value=(1.0, 0.0))), m(x))


def test_film_matches_reference_and_is_per_sample():
    torch.manual_seed(0)
    m = ResNet12(widths=(8, 16, 24, 32)).eval()
    _randomise_bn(m)
    x = _images(3)
    film = _film(m, batch=3)
    with torch.no_grad():
        out = m(x, film=film)
        torch.testing.assert_close(out, _reference_forward(m, x, film), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(out, m(x))
        # row b of a [B, C] FiLM conditions sample b only: same as running it alone with [C]
        one = [[(g[1], b[1]) for g, b in blk] for blk in film]
        torch.testing.assert_close(m(x[1:2], film=one), out[1:2], rtol=1e-4, atol=1e-5)


def test_film_gradients_reach_gamma_and_beta():
    m = ResNet12(widths=(8, 8, 8, 8))
    film = _film(m)
    for blk in film:
        for g, b in blk:
            g.requires_grad_(True)
            b.requires_grad_(True)
    m(_images(2), film=film).square().mean().backward()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for blk in film for g, _ in blk)
    assert all(b.grad is not None and b.grad.abs().sum() > 0 for blk in film for _, b in blk)


@pytest.mark.parametrize(
    "bad",
    [
        lambda m: _film(m)[:3],  # 3 blocks
        lambda m: [blk[:2] for blk in _film(m)],  # 2 pairs per block
        lambda m: [[(g,) for g, _ in blk] for blk in _film(m)],  # not pairs
        lambda m: "film",
    ],
)
def test_wrong_film_structure_raises(bad):
    m = ResNet12(widths=(8, 8, 8, 8))
    with pytest.raises(ValueError, match="film must be a list of 4 lists"):
        m(_images(1), film=bad(m))


def test_wrong_film_width_raises():
    m = ResNet12(widths=(8, 8, 8, 8))
    film = _film(m)
    film[2][1] = (torch.ones(5), torch.zeros(5))
    with pytest.raises(ValueError, match=r"broadcastable to \[B, 8\]"):
        m(_images(1), film=film)


def test_bad_widths_raise():
    with pytest.raises(ValueError, match="4 positive block widths"):
        ResNet12(widths=(64, 128, 256))
