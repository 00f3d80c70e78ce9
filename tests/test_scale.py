"""Temperature and embedding scale (fewshot_utils.scale): the four equal forms, and the
learned scale's gradient."""

import math

import pytest
import torch

from fewshot_utils.distances import protonet_logits, protonet_loss
from fewshot_utils.episodes import sample_episode
from fewshot_utils.models import conv4_for
from fewshot_utils.scale import (
    LearnedScale,
    equivalent_logits,
    last_batchnorm,
    scale_last_batchnorm_,
)


def _episode(seed=0):
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (8, 6, 1, 28, 28), generator=g, dtype=torch.uint8).squeeze(2)
    return sample_episode(data, way=5, shot=2, query=3, generator=g)


@pytest.mark.parametrize("last_pool", [True, False])
def test_four_forms_give_the_same_logits(last_pool):
    torch.manual_seed(0)
    model = conv4_for("omniglot", last_pool=last_pool)
    with torch.no_grad():  # a trained-looking last BN: gamma and beta away from 1 and 0
        bn = last_batchnorm(model)
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_(-0.5, 0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logits = equivalent_logits(model, _episode(), r=0.01)
    ref = logits["LSED(s = 0, r)"]
    assert len(logits) == 4 and ref.shape == (15, 5)
    for name, value in logits.items():
        torch.testing.assert_close(value, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
        assert torch.equal(value.argmax(-1), ref.argmax(-1)), name
    # the copy was scaled, not the model itself (its running statistics aside)
    after = model.state_dict()
    assert all(
        torch.equal(before[k], after[k])
        for k in before
        if "running" not in k and "num_batches" not in k
    )


def test_scaling_the_last_batchnorm_scales_the_embedding_in_both_modes():
    torch.manual_seed(1)
    a, b = conv4_for("omniglot"), conv4_for("omniglot")
    b.load_state_dict(a.state_dict())
    scale_last_batchnorm_(b, 0.3)
    x = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    for train in (True, False):
        a.train(train)
        b.train(train)
        with torch.no_grad():
            torch.testing.assert_close(b(x), 0.3 * a(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="k must be > 0"):
        scale_last_batchnorm_(b, -1.0)
    with pytest.raises(ValueError, match="no BatchNorm2d"):
        last_batchnorm(torch.nn.Linear(2, 2))


def test_learned_scale_is_metric_scaling_with_the_same_gradient():
    torch.manual_seed(2)
    backbone = torch.nn.Linear(4, 3)
    wrapped = LearnedScale(backbone, alpha=0.5)
    x, protos_x = torch.randn(6, 4), torch.randn(2, 4)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    loss_w, _ = protonet_loss(protonet_logits(wrapped(x), wrapped(protos_x)), labels)
    loss_w.backward()
    # the same loss written as metric scaling with a log-space alpha
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    d_logits = protonet_logits(
        backbone(x), backbone(protos_x), "squared_euclidean", log_alpha.exp()
    )
    loss_m, _ = protonet_loss(d_logits, labels)
    loss_m.backward()
    assert loss_w.item() == pytest.approx(loss_m.item(), rel=1e-5)
    assert wrapped.log_alpha.grad.item() == pytest.approx(log_alpha.grad.item(), rel=1e-4)
    assert wrapped.alpha == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must be > 0"):
        LearnedScale(backbone, alpha=0.0)
