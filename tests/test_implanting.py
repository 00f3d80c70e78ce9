"""Implanting (stage 2): implant stream, leave-one-out loss against a loop, frozen base,
per-task pipeline against the stage-1 evaluation on the same tasks."""

import pytest
import torch
import torch.nn.functional as F

from fewshot_utils.dense import FewShotMaps, evaluate_poolings
from fewshot_utils.evaluation import embed
from fewshot_utils.implanting import (
    ImplantConfig,
    Implants,
    base_block_states,
    evaluate_implanting,
    implanted_maps,
    leave_one_out_loss,
    prefix_features,
    train_implants,
)
from fewshot_utils.models import ResNet12


def _net(seed=0):
    torch.manual_seed(seed)
    m = ResNet12(widths=(4, 4, 8, 8)).eval()
    g = torch.Generator().manual_seed(seed + 1)
    for mod in m.modules():  # non-trivial BN statistics
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m


def _images(classes=5, per_class=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(classes, 1, 3, 1, 1, generator=g) * 200 + 20
    return (
        (base + 25 * torch.randn(classes, per_class, 3, size, size, generator=g))
        .clamp(0, 255)
        .to(torch.uint8)
    )


def test_prefix_and_base_states_reproduce_the_network():
    net = _net()
    x = _images()
    pre = prefix_features(net, x, device="cpu")
    assert pre.shape == (5, 6, 8, 4, 4)
    a1, a2, out = base_block_states(net.blocks[-1], pre.flatten(0, 1))
    with torch.no_grad():
        full = net(x.flatten(0, 1))
    torch.testing.assert_close(out, full, rtol=1e-4, atol=1e-5)
    assert a1.shape == a2.shape == (30, 8, 4, 4)


def test_implants_shapes_and_only_implants_learn():
    net = _net()
    block = net.blocks[-1]
    imp = Implants(block, width=3)
    x = torch.randn(4, 8, 4, 4)
    a1, a2, out = base_block_states(block, x)
    y = imp(x, a1, a2)
    assert y.shape == (4, 3, 2, 2)
    assert imp.conv2.in_channels == 8 + 3 and imp.conv3.in_channels == 8 + 3
    y.square().sum().backward()
    assert all(p.grad is not None for p in imp.parameters())
    assert all(p.grad is None for p in block.parameters()), "the base block stays untouched"
    # the implant stream really uses the base activations
    y2 = imp(x, a1 + 1.0, a2)
    assert not torch.allclose(y, y2)


def _loop_loo(fmap, labels, way, sp, qp, tau):
    losses, right = [], 0
    pool = {"gap": lambda m: m.mean((1, 2)), "gmp": lambda m: m.amax((1, 2))}
    for i in range(len(labels)):
        others = [j for j in range(len(labels)) if j != i]
        protos = torch.stack(
            [
                torch.stack([pool[sp](fmap[j]) for j in others if labels[j] == k]).mean(0)
                for k in range(way)
            ]
        )
        if qp == "dc":
            loc = fmap[i].flatten(1).t()
            logits = tau * F.cosine_similarity(loc[:, None], protos[None], dim=-1)  # [r, way]
            losses.append(F.cross_entropy(logits, labels[i].repeat(loc.shape[0])))
            right += int(logits.softmax(-1).mean(0).argmax() == labels[i])
        else:
            logits = tau * F.cosine_similarity(pool[qp](fmap[i])[None], protos, dim=-1)
            losses.append(F.cross_entropy(logits[None], labels[i : i + 1]))
            right += int(logits.argmax() == labels[i])
    return torch.stack(losses).mean(), right / len(labels)


@pytest.mark.parametrize("sp, qp", [("gap", "gap"), ("gap", "dc"), ("gmp", "gmp"), ("gmp", "dc")])
def test_leave_one_out_loss_matches_loop(sp, qp):
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(9, 5, 2, 3, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    loss, acc = leave_one_out_loss(fmap, labels, 3, sp, qp, tau=4.0)
    ref_loss, ref_acc = _loop_loo(fmap, labels, 3, sp, qp, 4.0)
    torch.testing.assert_close(loss, ref_loss)
    assert acc.item() == pytest.approx(ref_acc)


def test_leave_one_out_needs_two_shots():
    with pytest.raises(ValueError, match="at least 2 support examples per class"):
        leave_one_out_loss(torch.randn(3, 4, 2, 2), torch.tensor([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="shot >= 2"):
        evaluate_implanting(_net(), torch.randn(5, 6, 8, 4, 4), 3, 1, 2, 1, ImplantConfig())
    with pytest.raises(ValueError, match="support_pool"):
        ImplantConfig(support_pool="dc")


def test_training_lowers_the_loss_and_keeps_the_base():
    net = _net()
    pre = prefix_features(net, _images(classes=3, per_class=4), device="cpu")
    sup = pre.flatten(0, 1)
    labels = torch.arange(3).repeat_interleave(4)
    cfg = ImplantConfig(width=4, epochs=30, lr=1e-2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    imp, hist = train_implants(net.blocks[-1], sup, labels, 3, cfg, seed=0)
    assert hist["loss"][-1] < hist["loss"][0]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    widened = implanted_maps(net.blocks[-1], imp, sup)
    plain = implanted_maps(net.blocks[-1], None, sup)
    assert widened.shape[1] == plain.shape[1] + 4
    torch.testing.assert_close(widened[:, : plain.shape[1]], plain)
    again, _ = train_implants(net.blocks[-1], sup, labels, 3, cfg, seed=0)
    for p, q in zip(imp.parameters(), again.parameters()):
        torch.testing.assert_close(p, q)  # seeded: reproducible


def test_baseline_equals_stage1_evaluation_on_the_same_tasks():
    net = _net()
    x = _images(classes=6, per_class=7)
    pre = prefix_features(net, x, device="cpu")
    cfg = ImplantConfig(width=2, epochs=2)
    res = evaluate_implanting(
        net,
        pre,
        way=3,
        shot=2,
        query=3,
        tasks=4,
        config=cfg,
        seed=5,
        test_query_pools=("gap", "dc"),
        test_tau=7.0,
        progress=False,
    )
    ref = evaluate_poolings(
        FewShotMaps.from_maps(embed(net, x, device="cpu")),
        3,
        2,
        3,
        4,
        seed=5,
        combos=[("gap", "gap"), ("gap", "dc")],
        tau=7.0,
    )
    for qp in ("gap", "dc"):
        torch.testing.assert_close(
            res.baseline[qp].per_episode, ref["novel"]["gap", qp].per_episode
        )
    assert len(res.task_seconds) == 4 and all(t > 0 for t in res.train_seconds)
    assert all(p.requires_grad for p in net.parameters()), "requires_grad restored"
