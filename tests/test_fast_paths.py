"""The evaluation fast paths give the same results as the straightforward code: episode
indices identical to the full argsort they were first drawn with (committed results depend on
them), conv + batch-norm folding equal to the eval forward, the caller's model untouched by
``embed``, and the fused distance equal to a float64 reference."""

import copy

import pytest
import torch
from torch import nn

from fewshot_utils.distances import squared_euclidean
from fewshot_utils.episodes import _smallest, sample_indices
from fewshot_utils.evaluation import embed, evaluate_embeddings, inference_copy
from fewshot_utils.models import conv4_for


def _argsort_reference(num_classes, per_class, way, spq, generator, episodes):
    """sample_indices as first written: a full argsort of the random keys."""
    classes = torch.rand(episodes, num_classes, generator=generator).argsort(-1)[:, :way]
    items = torch.rand(episodes, way, per_class, generator=generator).argsort(-1)[..., :spq]
    return classes, items


@pytest.mark.parametrize(
    "num_classes, per_class, way, spq",
    [(1692, 20, 20, 16), (4112, 20, 60, 10), (64, 600, 5, 16), (10, 8, 3, 8)],
)
def test_sample_indices_equal_the_argsort_they_replace(num_classes, per_class, way, spq):
    for seed in range(2):
        g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        got = sample_indices(num_classes, per_class, way, spq, g1, episodes=200)
        ref = _argsort_reference(num_classes, per_class, way, spq, g2, 200)
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
        assert torch.equal(g1.get_state(), g2.get_state()), "same amount of randomness drawn"


@pytest.mark.parametrize(
    "shape, k",
    [((300, 1692), 20), ((300, 4112), 60), ((40, 5, 600), 16), ((300, 20), 16), ((50, 8), 8)],
)
def test_smallest_equals_argsort_when_keys_tie(shape, k):
    # keys on a coarse grid tie often, inside the k smallest and at the boundary: the rows
    # with ties take the argsort path, and must still agree with one argsort of the batch
    keys = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    keys = (keys * shape[-1] / 4).floor() / (shape[-1] / 4)
    assert (keys.sort(-1).values[..., : k + 1].diff(dim=-1) == 0).any(-1).float().mean() > 0.5
    torch.testing.assert_close(_smallest(keys, k), keys.argsort(-1)[..., :k], rtol=0, atol=0)
    distinct = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(_smallest(distinct, k), distinct.argsort(-1)[..., :k])


def test_sample_indices_pinned_values():
    # drawn with the original argsort implementation; chapters' committed results depend on them
    classes, items = sample_indices(1692, 20, 5, 3, torch.Generator().manual_seed(0))
    assert classes.tolist() == [872, 1417, 921, 83, 1139]
    assert items.tolist() == [[6, 9, 13], [7, 17, 15], [16, 8, 17], [18, 1, 10], [16, 15, 13]]


def _model_with_bn_stats(seed=0, dataset="omniglot", last_pool=True):
    torch.manual_seed(seed)
    model = conv4_for(dataset, last_pool=last_pool)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, as after training
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model


@pytest.mark.parametrize(
    "dataset, shape", [("omniglot", (6, 28, 28)), ("miniimagenet", (3, 3, 84, 84))]
)
def test_inference_copy_folds_batch_norm_and_matches_eval_forward(dataset, shape):
    model = _model_with_bn_stats(dataset=dataset).eval()
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    net = inference_copy(model, "cpu")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 4
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x), rtol=1e-4, atol=1e-5)


def test_embed_leaves_the_callers_model_untouched():
    model = _model_with_bn_stats(1, last_pool=False)
    model.train()
    before = copy.deepcopy(model.state_dict())
    data = torch.randint(0, 256, (3, 4, 28, 28), dtype=torch.uint8)
    emb = embed(model, data, batch_size=5, device="cpu")
    assert model.training, "mode restored"
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed"
        assert v.is_contiguous(), f"{k} was switched to channels_last in place"
    model.eval()
    with torch.no_grad():
        ref = model(data.flatten(0, 1)).view(3, 4, -1)
    torch.testing.assert_close(emb, ref, rtol=1e-4, atol=1e-5)


def test_embed_keeps_train_mode_batch_norm_out_of_the_result():
    # a model in train mode must still be embedded with running statistics (eval mode)
    model = _model_with_bn_stats(2).train()
    data = torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8)
    a = embed(model, data, device="cpu")
    b = embed(model, data[:, :1], device="cpu")  # batch composition must not matter
    torch.testing.assert_close(a[:, :1], b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "shapes",
    [((7, 13), (4, 13)), ((3, 9, 5), (3, 4, 5)), ((2, 3, 6, 8), (2, 3, 5, 8)), ((3, 9, 5), (4, 5))],
)
def test_squared_euclidean_matches_float64_reference(shapes):
    g = torch.Generator().manual_seed(0)
    x, y = (10 * torch.randn(*s, generator=g) for s in shapes)
    ref = ((x.double().unsqueeze(-2) - y.double().unsqueeze(-3)) ** 2).sum(-1)
    d = squared_euclidean(x, y)
    assert d.dtype == torch.float32 and d.shape == ref.shape
    torch.testing.assert_close(d.double(), ref, rtol=1e-5, atol=1e-3)


def test_squared_euclidean_gradient_matches_autograd_of_the_definition():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    gx, gy = torch.autograd.grad((squared_euclidean(x, y) * w).sum(), (x, y))
    rx, ry = torch.autograd.grad(
        (((x[..., None, :] - y[..., None, :, :]) ** 2).sum(-1) * w).sum(), (x, y)
    )
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gy, ry)


def test_evaluate_embeddings_independent_of_chunk_size():
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(30, 20, 16, generator=g) + torch.randn(30, 1, 16, generator=g)
    results = [
        evaluate_embeddings(emb, 5, 1, 15, episodes=1100, seed=4, max_chunk_bytes=b)
        for b in (2**15, 2**20, 2**23, 2**30)
    ]
    for r in results[1:]:
        torch.testing.assert_close(r.per_episode, results[0].per_episode)
        assert r.loss == pytest.approx(results[0].loss, rel=1e-5)
