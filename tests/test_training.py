"""Episodic training: learning, schedule, early stopping, checkpoints that resume exactly."""

import pytest
import torch

from fewshot_utils import training
from fewshot_utils.models import conv4_for
from fewshot_utils.training import (
    TrainConfig,
    measure_episodes_per_s,
    retrain_on_trainval,
    train_protonet,
)


def _toy_data(classes=12, per_class=6, seed=0):
    """Noisy images whose class is a brighter patch at a class-specific place: hard at first,
    learnable within a few dozen episodes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 200, (classes, per_class, 28, 28), generator=g, dtype=torch.uint8)
    for c in range(classes):
        r, col = divmod(c, 4)
        patch = x[c, :, 2 + 8 * r : 8 + 8 * r, 2 + 6 * col : 8 + 6 * col]
        patch.copy_(patch // 2 + 100)
    return x


def _config(**kw):
    episodes = dict(way=4, shot=1, query=2, max_episodes=12, episodes_per_epoch=3, lr_halve_every=6)
    validation = dict(val_way=3, val_query=2, val_episodes=5)
    return TrainConfig(**{**episodes, **validation, **kw})


def _model():
    torch.manual_seed(0)
    return conv4_for("omniglot")


def _equal_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_learns_and_records_history():
    data = _toy_data()
    res = train_protonet(
        _model(), data[:8], data[8:], _config(max_episodes=30), device="cpu", progress=False
    )
    h = res.history
    assert h["episode"] == list(range(3, 33, 3))
    assert len(h["val_acc"]) == 10 and all(0 <= a <= 1 for a in h["val_acc"])
    assert sum(h["train_loss"][-3:]) < sum(h["train_loss"][:3]) / 2
    assert max(h["val_acc"][-3:]) > h["val_acc"][0]
    assert h["lr"][0] == pytest.approx(1e-3) and h["lr"][-1] == pytest.approx(1e-3 / 2**5)
    assert res.episodes_done == 30 and not res.loaded and res.episodes_per_s > 0
    # each validation pass's per-episode accuracies, for paired gaps between models
    assert len(h["val_per_episode"]) == 10
    for acc, per_ep in zip(h["val_acc"], h["val_per_episode"]):
        assert len(per_ep) == 5 and sum(per_ep) / 5 == pytest.approx(acc)


def test_best_model_is_selected_and_early_stopping():
    data = _toy_data()
    cfg = _config(max_episodes=60, patience=2, select_on="loss")
    res = train_protonet(_model(), data[:8], data[8:], cfg, device="cpu", progress=False)
    h = res.history
    best = min(range(len(h["val_loss"])), key=lambda i: h["val_loss"][i]) + 1
    assert res.best_epoch == best
    if res.episodes_done < 60:  # stopped early: exactly `patience` epochs without progress
        assert len(h["val_loss"]) - best == 2


def test_interrupted_run_resumes_to_identical_weights(tmp_path, interrupted, assert_same_run):
    data = _toy_data()
    cfg = _config()
    ref = train_protonet(
        _model(), data[:8], data[8:], cfg, tmp_path / "ref.pt", device="cpu", progress=False
    )
    ckpt = tmp_path / "run.pt"
    args = (data[:8], data[8:], cfg, ckpt)
    interrupted(train_protonet, 2, _model(), *args, device="cpu", progress=False)
    assert ckpt.exists()
    fresh = conv4_for("omniglot")  # other initial weights: everything must come from the file
    resumed = train_protonet(fresh, *args, device="cpu", progress=False)
    assert resumed.resumed and not resumed.loaded
    assert_same_run(resumed, ref)
    # a finished run is loaded, not retrained
    again = train_protonet(conv4_for("omniglot"), *args, device="cpu", progress=False)
    assert again.loaded and _equal_weights(again.model, ref.model)


def test_a_finished_run_extended_equals_the_longer_run(tmp_path, assert_same_run):
    data = _toy_data()
    args = (data[:8], data[8:])
    longer = train_protonet(_model(), *args, _config(max_episodes=12), device="cpu", progress=False)
    short = tmp_path / "short.pt"
    train_protonet(_model(), *args, _config(max_episodes=6), short, device="cpu", progress=False)

    def extend(model, cfg, path):
        return train_protonet(model, *args, cfg, path, device="cpu", progress=False, extends=short)

    ext = extend(conv4_for("omniglot"), _config(max_episodes=12), tmp_path / "long.pt")
    assert ext.resumed and not ext.loaded and ext.episodes_done == 12
    assert_same_run(ext, longer)
    with pytest.raises(ValueError, match="not fewer than the 3 asked for"):
        extend(_model(), _config(max_episodes=3), tmp_path / "x.pt")
    with pytest.raises(ValueError, match="another configuration.*lr"):
        extend(_model(), _config(max_episodes=12, lr=1e-2), tmp_path / "y.pt")


def test_retrain_and_config_mismatch(tmp_path):
    data = _toy_data()

    def train(cfg, retrain=False):
        ckpt = tmp_path / "run.pt"
        return train_protonet(
            _model(), data[:8], data[8:], cfg, ckpt, retrain, "cpu", progress=False
        )

    train(_config())
    with pytest.raises(ValueError, match="another configuration.*lr"):
        train(_config(lr=1e-2))
    res = train(_config(lr=1e-2), retrain=True)
    assert not res.loaded and res.history["lr"][0] == pytest.approx(1e-2)


def test_corrupt_checkpoint_error(tmp_path):
    data = _toy_data()
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="unreadable.*retrain=True"):
        train_protonet(_model(), data[:8], data[8:], _config(), ckpt, device="cpu", progress=False)


def test_gpu_code_paths_fall_back_on_cpu(tmp_path):
    """device='cuda' without CUDA warns and trains on the CPU; AMP runs (bfloat16) on the CPU."""
    data = _toy_data()
    cfg = _config(amp=True, max_episodes=6)
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.warns(UserWarning, match="CUDA was requested"):
        res = train_protonet(_model(), data[:8], data[8:], cfg, device="cuda", progress=False)
    assert next(res.model.parameters()).device.type == "cpu"
    assert all(torch.isfinite(torch.tensor(res.history["train_loss"])))


def test_lsed_distance_trains():
    data = _toy_data()
    cfg = _config(distance="lsed", distance_kwargs={"s": 0.0, "r": 0.01}, max_episodes=6)
    res = train_protonet(_model(), data[:8], data[8:], cfg, device="cpu", progress=False)
    assert len(res.history["val_acc"]) == 2


def test_config_and_episode_errors():
    data = _toy_data()
    with pytest.raises(ValueError, match="multiple of episodes_per_epoch"):
        TrainConfig(max_episodes=10, episodes_per_epoch=3)
    with pytest.raises(ValueError, match="select_on"):
        TrainConfig(select_on="f1")
    with pytest.raises(ValueError, match="exceeds the 8 classes"):
        train_protonet(_model(), data[:8], data[8:], _config(way=9), device="cpu", progress=False)


def test_measure_episodes_per_s_leaves_model_untouched():
    data = _toy_data()
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rate = measure_episodes_per_s(model, data, _config(), episodes=2, device="cpu")
    assert rate > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_clip_per_tensor_matches_clip_grad_norm_tensor_by_tensor():
    """The fused per-tensor clipping gives bit for bit what TADAM's loop did before:
    ``clip_grad_norm_([p], max_norm)`` for each parameter (some above the norm, some below)."""
    from fewshot_utils.training import clip_per_tensor_

    g = torch.Generator().manual_seed(0)
    shapes = [(8, 3, 3, 3), (8,), (16, 8), (4,), (5, 5)]
    scales = [10.0, 0.01, 3.0, 1e-4, 1.0]
    a = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    b = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for pa, pb, s, k in zip(a, b, shapes, scales):
        pa.grad = torch.randn(s, generator=g) * k
        pb.grad = pa.grad.clone()
    a[3].grad = None  # a parameter without gradient is skipped
    b[3].grad = None
    for p in a:
        if p.grad is not None:
            torch.nn.utils.clip_grad_norm_([p], 1.0)
    clip_per_tensor_(b, 1.0)
    for pa, pb in zip(a, b):
        assert (pa.grad is None and pb.grad is None) or torch.equal(pa.grad, pb.grad)
    assert b[0].grad.norm() == pytest.approx(1.0, rel=1e-5)  # clipped
    assert b[1].grad.norm() < 0.1  # untouched


def test_a_training_step_leaves_its_figures_on_the_device():
    """No .item() per step: the loop reads the losses once per epoch (a GPU step never waits
    for the host)."""
    from fewshot_utils.episodes import query_labels, sample_episode
    from fewshot_utils.training import TrainConfig, _train_step

    torch.manual_seed(0)
    x = torch.randint(0, 256, (6, 4, 1, 28, 28), dtype=torch.uint8)
    model = conv4_for("omniglot")
    cfg = TrainConfig(way=3, shot=1, query=2)
    opt = torch.optim.Adam(model.parameters())
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    ep = sample_episode(x, 3, 1, 2, torch.Generator().manual_seed(0))
    cpu = torch.device("cpu")
    loss, acc = _train_step(model, ep, query_labels(3, 2), cfg, opt, scaler, cpu, False)
    assert isinstance(loss, torch.Tensor) and isinstance(acc, torch.Tensor)
    assert loss.dim() == 0 and not loss.requires_grad


def test_retrain_on_trainval_uses_train_and_val_for_the_best_episodes(tmp_path, monkeypatch):
    data = _toy_data(classes=16)
    train, val = data[:10], data[10:]
    cfg = _config(max_episodes=30, patience=3)
    selected = train_protonet(_model(), train, val, cfg, device="cpu", progress=False)
    best = selected.history["episode"][selected.best_epoch - 1]
    drawn = []  # the class pool and images of every training episode the retraining draws
    real_sample = training.sample_episode

    def spy(pool, way, shot, query, gen):
        ep = real_sample(pool, way, shot, query, gen)
        if (way, shot, query) == (cfg.way, cfg.shot, cfg.query):
            drawn.append((pool, ep.support))
        return ep

    monkeypatch.setattr(training, "sample_episode", spy)
    ckpt = tmp_path / "trainval.pt"
    res = retrain_on_trainval(_model(), train, val, selected, cfg, ckpt, device="cpu")
    # one training episode per selected episode, and no more: the chosen length, not patience
    assert len(drawn) == best == res.episodes_done
    assert res.history["episode"] == [best] and res.best_epoch == 1  # the final weights kept
    pool = drawn[0][0]
    assert pool.shape[0] == 16 and torch.equal(pool, torch.cat([train, val]))
    # episodes reach the validation classes too (their images occur in the supports)
    supports = torch.cat([s.flatten(0, 1) for _, s in drawn])
    assert any(torch.equal(img, v) for img in supports for v in val.flatten(0, 1))
    # the same configuration otherwise, and checkpointed: a second call loads it
    again = retrain_on_trainval(_model(), train, val, selected, cfg, ckpt, device="cpu")
    assert again.loaded and _equal_weights(again.model, res.model)


def test_retrain_on_trainval_errors():
    data = _toy_data()
    cfg = _config(max_episodes=6)
    selected = train_protonet(_model(), data[:8], data[8:], cfg, device="cpu", progress=False)
    with pytest.raises(ValueError, match="shape"):
        retrain_on_trainval(_model(), data[:8], data[8:, :, :20], selected, cfg, device="cpu")
    selected.best_epoch = 0
    with pytest.raises(ValueError, match="no best epoch"):
        retrain_on_trainval(_model(), data[:8], data[8:], selected, cfg, device="cpu")


def test_a_learned_scale_gets_its_own_rate_and_its_path_is_recorded():
    """With ``alpha_lr`` the log-scale of a LearnedScale is in its own Adam group: it moves
    by about alpha_lr per step (Adam's step is about its rate), here far more than the
    network's 1e-3 allows; its value after each epoch is in the history."""
    from fewshot_utils.scale import LearnedScale

    data = _toy_data()
    runs = {}
    for alpha_lr in (None, 0.1):
        model = LearnedScale(_model(), alpha=1.0)
        cfg = _config(alpha_lr=alpha_lr)
        opt = training.adam(model, cfg)
        assert [g["lr"] for g in opt.param_groups] == ([1e-3] if alpha_lr is None else [1e-3, 0.1])
        runs[alpha_lr] = train_protonet(
            model, data[:8], data[8:], cfg, device="cpu", progress=False
        )
    slow, fast = (abs(runs[k].history["alpha"][-1] - 1.0) for k in (None, 0.1))
    assert slow < 12 * 1e-3 * 1.1  # 12 steps of about 1e-3 in log space
    assert fast > 0.2  # 12 steps of 0.1 (halved after 6) in log space: a real move
    assert len(runs[0.1].history["alpha"]) == 4
    assert runs[0.1].history["alpha"][-1] == pytest.approx(runs[0.1].model.alpha, rel=0.5)
    with pytest.raises(ValueError, match="alpha_lr"):
        _config(alpha_lr=0.0)
    assert "alpha_lr" not in _config().signature() and _config(alpha_lr=0.1).signature()["alpha_lr"]


def test_training_time_estimate_is_runs_times_episodes_over_the_measured_rate(monkeypatch):
    monkeypatch.setattr(training, "measure_episodes_per_s", lambda *a, **k: 2.0)
    cfg = TrainConfig(way=5, shot=1, query=15, max_episodes=100)
    rate, text = training.training_time_estimate(None, None, cfg, 3, "cpu", 30.0, "testing")
    assert rate == 2.0
    assert text.splitlines()[0] == "5-way 1-shot 15-query episodes: 2.00 training episodes/s"
    assert "training 3 models (at most): 2.5 min" in text  # 3 x 100 episodes at 2 per second
    assert "at least 3.0 min" in text and "not estimated: testing" in text  # 30 s spent before
    with pytest.raises(ValueError, match="runs"):
        training.training_time_estimate(None, None, cfg, 0, "cpu")
