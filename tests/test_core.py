"""Episodes, models, evaluation, results records and profiles."""

import json
import math
import os
import re

import pytest
import torch

from fewshot_utils.episodes import check_episode, query_labels, sample_episode, sample_indices
from fewshot_utils.evaluation import (
    ci95,
    embed,
    evaluate_embeddings,
    image_accuracy,
    paired_difference,
)
from fewshot_utils.models import Conv4, InputNorm, conv4_for
from fewshot_utils.profiles import (
    column,
    fastest_threads,
    pick,
    resolve_device,
    resolve_profile,
)
from fewshot_utils.results import REQUIRED, load_results, make_record, write_result


def _labelled_data(classes=10, per_class=8, size=4):
    """Item [c, i] is filled with the value 10 * c + i, so samples can be traced back."""
    v = 10 * torch.arange(classes).view(-1, 1) + torch.arange(per_class).view(1, -1)
    return v.view(classes, per_class, 1, 1).expand(classes, per_class, size, size).to(torch.uint8)


# ----------------------------------------------------------------------------- episodes


def test_episode_shapes_and_contents():
    data = _labelled_data()
    g = torch.Generator().manual_seed(0)
    ep = sample_episode(data, way=5, shot=2, query=3, generator=g)
    assert ep.support.shape == (5, 2, 4, 4) and ep.query.shape == (5, 3, 4, 4)
    assert ep.classes.unique().numel() == 5
    for k in range(5):
        items = torch.cat([ep.support[k], ep.query[k]])[:, 0, 0].long()
        assert (items // 10 == ep.classes[k]).all(), "row k must come from class classes[k]"
        assert items.unique().numel() == 5, "items within a class are distinct"


def test_episode_seeded_reproducible_and_varied():
    data = _labelled_data()
    a = sample_episode(data, 5, 1, 2, torch.Generator().manual_seed(7))
    b = sample_episode(data, 5, 1, 2, torch.Generator().manual_seed(7))
    assert torch.equal(a.support, b.support) and torch.equal(a.query, b.query)
    g = torch.Generator().manual_seed(7)
    eps = [sample_episode(data, 5, 1, 2, g).classes for _ in range(20)]
    assert len({tuple(c.tolist()) for c in eps}) > 1


def test_episode_class_frequencies_uniform():
    g = torch.Generator().manual_seed(0)
    classes, items = sample_indices(10, 8, way=3, shot_plus_query=4, generator=g, episodes=20000)
    assert classes.shape == (20000, 3) and items.shape == (20000, 3, 4)
    freq = torch.bincount(classes.flatten(), minlength=10).float() / classes.numel()
    assert (freq - 0.1).abs().max() < 0.01
    sorted_items = items.sort(-1).values
    assert (sorted_items.diff(dim=-1) > 0).all(), "no item twice in one class of an episode"


@pytest.mark.parametrize(
    "way, shot, query, msg",
    [
        (11, 1, 1, "exceeds the 10 classes"),
        (5, 5, 4, "exceeds the 8 items per class"),
        (1, 1, 1, "way >= 2"),
        (5, 0, 1, "shot >= 1"),
    ],
)
def test_episode_errors_name_the_limit(way, shot, query, msg):
    with pytest.raises(ValueError, match=msg):
        sample_episode(_labelled_data(), way, shot, query)
    with pytest.raises(ValueError, match="must be \\[classes, per_class"):
        sample_episode(torch.zeros(5), 2, 1, 1)


def test_query_labels():
    assert query_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]


def test_check_episode_accepts_exact_limits():
    check_episode(10, 8, 10, 3, 5)


# ----------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    "dataset, shape, last_pool, dim",
    [
        ("omniglot", (2, 28, 28), True, 64),
        ("omniglot", (2, 28, 28), False, 576),
        ("miniimagenet", (2, 3, 84, 84), True, 1600),
    ],
)
def test_conv4_output_dims(dataset, shape, last_pool, dim):
    model = conv4_for(dataset, last_pool=last_pool)
    out = model(torch.randint(0, 256, shape, dtype=torch.uint8))
    assert out.shape == (2, dim)


def test_conv4_structure():
    model = Conv4()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 64, (3, 3)),
        (64, 64, (3, 3)),
        (64, 64, (3, 3)),
        (64, 64, (3, 3)),
    ]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 4
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in Conv4(last_pool=False).modules()) == 3


def test_input_norm_values_and_errors():
    norm = InputNorm((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    torch.testing.assert_close(norm(x), torch.full((1, 3, 2, 2), 2.0))
    with pytest.raises(ValueError, match=r"expected images \[n, 3, h, w\]"):
        norm(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="unknown dataset"):
        conv4_for("cifar")


def test_conv4_channels_last_gives_same_output():
    torch.manual_seed(0)
    model = conv4_for("omniglot").eval()
    x = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    ref = model(x)
    model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- evaluation


def test_ci95_formula():
    v = torch.tensor([0.0, 1.0, 1.0, 0.0])
    assert ci95(v) == pytest.approx(1.96 * v.std().item() / 2)
    assert math.isnan(ci95(torch.tensor([1.0])))


def test_paired_difference_is_the_interval_of_the_per_episode_difference():
    g = torch.Generator().manual_seed(0)
    hard = torch.rand(400, generator=g)  # episodes differ in difficulty for both models
    ref = hard
    new = hard + 0.02 + 0.01 * torch.randn(400, generator=g)
    mean, half = paired_difference(new, ref)
    diff = (new - ref).double()
    assert mean == pytest.approx(diff.mean().item())
    assert half == pytest.approx(1.96 * diff.std().item() / math.sqrt(400))
    # much narrower than either accuracy's interval (or the larger of the two)
    assert half < max(ci95(new), ci95(ref)) / 5
    with pytest.raises(ValueError, match="same episodes"):
        paired_difference(new, ref[:-1])


def test_evaluate_embeddings_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(12, 10, 6, generator=g) + 2 * torch.randn(12, 1, 6, generator=g)
    res = evaluate_embeddings(emb, way=4, shot=2, query=3, episodes=37, seed=5, max_chunk_bytes=1)
    # recompute each episode with the same index stream, one at a time, by hand
    classes, items = sample_indices(12, 10, 4, 5, torch.Generator().manual_seed(5), episodes=37)
    accs = []
    for cls, its in zip(classes, items):
        x = emb[cls[:, None], its]
        protos = x[:, :2].mean(1)
        q = x[:, 2:].reshape(-1, 6)
        d = ((q[:, None] - protos[None]) ** 2).sum(-1)
        accs.append((d.argmin(1) == torch.arange(4).repeat_interleave(3)).float().mean())
    accs = torch.stack(accs)
    torch.testing.assert_close(res.per_episode, accs)
    assert res.accuracy == pytest.approx(accs.mean().item())
    assert res.ci95 == pytest.approx(1.96 * accs.std().item() / math.sqrt(37))
    # chunking does not change the episodes drawn
    big = evaluate_embeddings(emb, way=4, shot=2, query=3, episodes=37, seed=5)
    torch.testing.assert_close(big.per_episode, res.per_episode)


def test_evaluate_separable_data_is_perfect_and_errors():
    emb = 100 * torch.eye(8).view(8, 1, 8).expand(8, 20, 8) + torch.randn(8, 20, 8)
    assert evaluate_embeddings(emb, 5, 1, 5, episodes=50).accuracy == 1.0
    with pytest.raises(ValueError, match="exceeds the 20 items"):
        evaluate_embeddings(emb, 5, 10, 11, episodes=5)


def test_embed_restores_mode_and_matches_eval_forward():
    torch.manual_seed(0)
    model = conv4_for("omniglot")
    data = torch.randint(0, 256, (3, 5, 28, 28), dtype=torch.uint8)
    emb = embed(model, data, batch_size=4, device="cpu")
    assert model.training
    model.eval()
    torch.testing.assert_close(emb, model(data.flatten(0, 1)).view(3, 5, -1))


def test_embed_amp_path_runs_on_cpu():
    torch.manual_seed(0)
    model = conv4_for("omniglot")
    data = torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8)
    emb = embed(model, data, device="cpu", amp=True)  # bfloat16 autocast on the CPU
    assert emb.dtype == torch.float32 and emb.shape == (2, 3, 64)
    ref = embed(model, data, device="cpu", amp=False)
    torch.testing.assert_close(emb, ref, rtol=0.1, atol=0.1)


def test_embed_then_evaluate_end_to_end_small():
    torch.manual_seed(0)
    model = conv4_for("omniglot")
    data = torch.randint(0, 256, (6, 4, 28, 28), dtype=torch.uint8)
    res = evaluate_embeddings(embed(model, data, device="cpu"), 3, 1, query=2, episodes=10)
    assert 0 <= res.accuracy <= 1 and res.episodes == 10 and "episodes" in str(res)


# ----------------------------------------------------------------------------- results


def _record(profile="cpu", **kw):
    base = dict(
        experiment="ch0",
        dataset="omniglot",
        method="squared_euclidean",
        way=20,
        shot=1,
        accuracy=0.95,
        ci95=0.002,
        episodes=1000,
        profile=profile,
        device="cpu",
        wall_time_s=12.345,
        config={"lr": 1e-3},
    )
    base.update(kw)
    return make_record(**base)


def test_result_record_round_trip(tmp_path):
    rec = _record(query=15)
    path = write_result(rec, tmp_path)
    assert path.name == "ch0__omniglot__squared_euclidean__20w1s__cpu.json"
    loaded = load_results(tmp_path)
    assert loaded == [json.loads(json.dumps(rec))]
    assert set(REQUIRED) <= set(loaded[0])
    assert loaded[0]["query"] == 15 and loaded[0]["torch"] == torch.__version__
    assert loaded[0]["machine"].endswith(f", {os.cpu_count()} cores")
    assert not list(tmp_path.glob(".*.tmp"))


def test_record_names_the_threads_torch_uses():
    """The thread count changes a CPU run's rounding, so a record says which one it ran with."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert _record()["threads"] == 1
        torch.set_num_threads(2)
        assert _record()["threads"] == 2
    finally:
        torch.set_num_threads(before)


def test_seed_repeats_get_their_own_file(tmp_path):
    assert write_result(_record(train_seed=0), tmp_path).name.endswith("__20w1s__cpu.json")
    assert write_result(_record(train_seed=2), tmp_path).name.endswith("__20w1s__cpu__seed2.json")
    assert len(load_results(tmp_path)) == 2


def test_smoke_records_are_never_written(tmp_path):
    assert write_result(_record(profile="smoke"), tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_result_record_errors(tmp_path):
    with pytest.raises(ValueError, match="fraction"):
        _record(accuracy=95.0)
    with pytest.raises(ValueError, match="profile must be"):
        _record(profile="laptop")
    with pytest.raises(ValueError, match="lacks"):
        write_result({"experiment": "x"}, tmp_path)


_RUN = dict(method="m", profile="cpu", device="cpu", wall_time_s=1.0, config={})


def test_record_takes_the_task_shape_from_the_result():
    torch.manual_seed(0)
    emb = torch.randn(6, 8, 4)
    res = evaluate_embeddings(emb, way=3, shot=2, query=4, episodes=7)
    common = dict(_RUN, experiment="ch0", dataset="omniglot")
    rec = make_record(result=res, **common)
    assert (rec["way"], rec["shot"], rec["query"], rec["episodes"]) == (3, 2, 4, 7)
    assert rec["accuracy"] == res.accuracy and rec["ci95"] == res.ci95
    assert rec["per_task"] == [round(a, 4) for a in res.per_episode.tolist()]  # for pairing
    # a caller that names other tasks than those scored (chapter 6's leaked loop variable)
    with pytest.raises(ValueError, match="shot=10 was passed but the result was measured with"):
        make_record(result=res, shot=10, **common)
    with pytest.raises(ValueError, match="query=15 was passed"):
        make_record(result=res, query=15, **common)
    assert make_record(result=res, way=3, shot=2, query=4, **common)["shot"] == 2
    with pytest.raises(ValueError, match="pass .*'way'.* or a result"):
        make_record(shot=1, accuracy=0.5, ci95=0.1, episodes=3, **common)


def test_record_of_an_accuracy_over_images():
    res = image_accuracy(torch.tensor([1, 1, 0, 1]))
    rec = make_record(result=res, way=5, shot=5, experiment="e", dataset="d", **_RUN)
    assert (rec["unit"], rec["episodes"], rec["accuracy"]) == ("images", 4, 0.75)
    assert rec["ci_low"] < 0.75 < rec["ci_high"] and rec["ci95"] > 0.3  # 4 images: wide


# ----------------------------------------------------------------------------- profiles


def test_profile_resolution_order(monkeypatch):
    monkeypatch.setenv("FEWSHOT_PROFILE", "smoke")
    assert resolve_profile(None) == "smoke"
    assert resolve_profile("full") == "full"  # the papermill parameter wins
    monkeypatch.delenv("FEWSHOT_PROFILE")
    expected = "full" if torch.cuda.is_available() else "cpu"
    assert resolve_profile(None) == expected
    assert resolve_profile("AUTO") == expected
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        resolve_profile("fast")


def test_pick():
    assert pick("cpu", smoke=1, cpu=2, full=3) == 2
    with pytest.raises(ValueError, match="missing"):
        pick("cpu", smoke=1, cpu=2)


def test_column_takes_the_profiles_values():
    table = {
        "episodes": (6, 500, 60_000),
        "runs": ({1: (5, 1, 5)}, {1: (5, 1, 5)}, {5: (20, 5, 15)}),
    }
    assert column("smoke", table) == {"episodes": 6, "runs": {1: (5, 1, 5)}}
    assert column("full", table) == {"episodes": 60_000, "runs": {5: (20, 5, 15)}}
    with pytest.raises(ValueError, match="one value per profile"):
        column("cpu", {"episodes": (6, 500)})
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        column("gpu", table)


def test_resolve_device_falls_back_to_cpu():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: no fallback to test")
    with pytest.warns(UserWarning, match="CUDA was requested"):
        assert resolve_device("cuda") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_fastest_threads_keeps_the_faster_setting():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        rates = fastest_threads(lambda: 10.0 / torch.get_num_threads(), "cpu")
        assert rates == {2: 5.0, 1: 10.0} and torch.get_num_threads() == 1
        torch.set_num_threads(2)
        rates = fastest_threads(lambda: float(torch.get_num_threads()), "cpu")
        assert rates == {2: 2.0, 1: 1.0} and torch.get_num_threads() == 2
        assert fastest_threads(lambda: 1 / 0, "cuda") == {}
    finally:
        torch.set_num_threads(before)


def test_record_names_the_commit_loaded_at_import(monkeypatch):
    from fewshot_utils import results

    first = results.run_commit()
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", first)
    monkeypatch.setattr(results, "git_commit", lambda: "f" * 40)  # a commit made mid-run
    assert _record()["commit"] == first


def test_git_commit_marks_changed_and_untracked_code_dirty(tmp_path, monkeypatch):
    import subprocess

    from fewshot_utils import results

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "fewshot_utils").mkdir()
    (tmp_path / "fewshot_utils" / "a.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "a")
    monkeypatch.setattr(results, "_REPO", tmp_path)
    clean = results.git_commit()
    assert re.fullmatch(r"[0-9a-f]{40}", clean)
    (tmp_path / "README.md").write_text("not code\n")  # outside the code folders: still clean
    assert results.git_commit() == clean
    (tmp_path / "fewshot_utils" / "new.py").write_text("y = 2\n")  # ran, but not committed
    assert results.git_commit() == clean + "-dirty"
    (tmp_path / "fewshot_utils" / "new.py").unlink()
    (tmp_path / "fewshot_utils" / "a.py").write_text("x = 2\n")
    assert results.git_commit() == clean + "-dirty"


def test_an_unreadable_record_is_named(tmp_path):
    (tmp_path / "a_good.json").write_text('{"experiment": "x"}')
    (tmp_path / "b_broken.json").write_text('{"experiment": ')
    with pytest.raises(ValueError, match=r"b_broken\.json is not valid JSON"):
        load_results(tmp_path)
    (tmp_path / "b_broken.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"b_broken\.json holds a list"):
        load_results(tmp_path)
