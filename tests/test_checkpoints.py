"""Checkpoints: a round trip restores weights, optimiser, scheduler and every random state
exactly; unreadable files, another configuration and another network give clear errors;
atomic writes never leave a temporary or half-written file."""

import re

import pytest
import torch
from torch import nn

from fewshot_utils.checkpoints import cpu_copy, load, pack, progress, save_atomic, saved_weights

SIGNATURE = {"config": {"lr": 0.1, "way": 5, "distance_kwargs": {}}, "model": {"width": 8}}


def _setup(seed=0, width=8):
    """A small network with dropout (draws from torch's global RNG) and batch norm (buffers),
    Adam (per-parameter state), a step schedule, a disabled scaler and an episode generator."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(4, width), nn.Dropout(0.5), nn.BatchNorm1d(width), nn.Linear(width, 2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    stateful = {
        "model": model,
        "optimiser": opt,
        "scheduler": torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5),
        "scaler": torch.amp.GradScaler("cpu", enabled=False),
        "aux_optimiser": None,  # an absent part
    }
    return stateful, {"episodes": torch.Generator().manual_seed(seed + 1)}


def _steps(stateful, generators, n):
    """``n`` training steps on batches drawn from the episode generator."""
    model, opt = stateful["model"], stateful["optimiser"]
    model.train()
    for _ in range(n):
        x = torch.randn(6, 4, generator=generators["episodes"])
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        stateful["scheduler"].step()


def _continuation(stateful, generators):
    """What a resumed run does next: one more step, then the next draws of every RNG."""
    _steps(stateful, generators, 1)
    return (
        cpu_copy(stateful["model"].state_dict()),
        stateful["scheduler"].get_last_lr(),
        torch.rand(5, generator=generators["episodes"]),
        torch.rand(5),
    )


def _saved(tmp_path, state=None):
    stateful, generators = _setup()
    _steps(stateful, generators, 3)
    path = tmp_path / "run.pt"
    save_atomic(pack(SIGNATURE, state or {"episode": 3}, stateful, generators), path)
    return path, stateful, generators


def test_round_trip_restores_everything_exactly(tmp_path):
    path, stateful, generators = _saved(tmp_path, {"episode": 3, "history": [0.5, 0.25]})
    weights = cpu_copy(stateful["model"].state_dict())
    adam = stateful["optimiser"].state_dict()["state"]
    adam = {i: {k: v.clone() for k, v in s.items()} for i, s in adam.items()}
    expected = _continuation(stateful, generators)

    fresh, fresh_gens = _setup(seed=7)  # other weights and generator: all must come from file
    torch.manual_seed(123)  # and another global RNG state
    state = load(path, SIGNATURE, fresh, fresh_gens)

    assert state == {"episode": 3, "history": [0.5, 0.25]}
    got = fresh["model"].state_dict()
    assert got.keys() == weights.keys()
    assert all(torch.equal(got[k], v) for k, v in weights.items())  # buffers included
    got_adam = fresh["optimiser"].state_dict()["state"]
    assert got_adam.keys() == adam.keys()
    for i, s in adam.items():
        assert all(torch.equal(got_adam[i][k], v) for k, v in s.items())
    again = _continuation(fresh, fresh_gens)
    assert all(torch.equal(again[0][k], v) for k, v in expected[0].items())
    assert again[1] == expected[1]  # the schedule continues where it was
    assert torch.equal(again[2], expected[2])  # the episode generator
    assert torch.equal(again[3], expected[3])  # torch's global RNG


def test_truncated_file_is_unreadable_and_names_the_path(tmp_path):
    path, stateful, generators = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(RuntimeError, match=re.escape(str(path)) + ".*unreadable.*retrain=True"):
        load(path, SIGNATURE, stateful, generators)


def test_a_file_that_is_not_a_checkpoint_is_unreadable(tmp_path):
    path = tmp_path / "other.pt"
    save_atomic({"config": SIGNATURE["config"], "model": {}}, path)
    stateful, generators = _setup()
    with pytest.raises(RuntimeError, match="unreadable.*not a checkpoint.*retrain=True"):
        load(path, SIGNATURE, stateful, generators)


def test_another_configuration_lists_the_differing_keys_and_restores_nothing(tmp_path):
    path, _, _ = _saved(tmp_path)
    stateful, generators = _setup(seed=7)
    before = cpu_copy(stateful["model"].state_dict())
    now = {"config": {**SIGNATURE["config"], "lr": 0.01, "shot": 1}, "model": {"width": 8}}
    with pytest.raises(ValueError, match="another configuration") as err:
        load(path, now, stateful, generators)
    message = str(err.value)
    assert "'config.lr': (0.1, 0.01)" in message
    assert "'config.shot': (<absent>, 1)" in message
    assert "way" not in message and "model.width" not in message
    after = stateful["model"].state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_weights_of_another_network(tmp_path):
    path, _, _ = _saved(tmp_path)
    stateful, generators = _setup(width=6)
    with pytest.raises(ValueError, match="(?s)weights of another network.*retrain=True"):
        load(path, SIGNATURE, stateful, generators)


def test_a_part_the_checkpoint_does_not_hold(tmp_path):
    path, _, _ = _saved(tmp_path)
    stateful, generators = _setup()
    stateful["aux_optimiser"] = torch.optim.SGD(stateful["model"].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"no state for \['aux_optimiser'\]"):
        load(path, SIGNATURE, stateful, generators)


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("boom")


def _half_written_save(obj, f):
    """A ``torch.save`` that dies mid-write, as on a full disk."""
    with open(f, "wb") as out:
        out.write(b"PK\x03\x04 half a file")
    raise RuntimeError("boom")


@pytest.mark.parametrize("failure", ["pickling", "half_written"])
@pytest.mark.parametrize("existing", [True, False])
def test_save_atomic_never_leaves_a_half_written_or_temporary_file(
    tmp_path, monkeypatch, failure, existing
):
    path = tmp_path / "x.pt"
    if existing:
        save_atomic({"a": 1}, path)
    obj = {"a": 2}
    if failure == "pickling":
        obj["b"] = _Unpicklable()
    else:
        monkeypatch.setattr(torch, "save", _half_written_save)
    with pytest.raises(RuntimeError, match="boom"):
        save_atomic(obj, path)
    assert [p.name for p in tmp_path.iterdir()] == (["x.pt"] if existing else [])
    if existing:
        assert torch.load(path) == {"a": 1}


def test_save_atomic_creates_the_folder_and_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "x.pt"
    save_atomic({"a": 1}, path)
    save_atomic({"a": 2}, path)
    assert torch.load(path) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]


def test_cpu_copy_is_a_snapshot():
    layer = nn.Linear(3, 2)
    copy = cpu_copy(layer.state_dict())
    with torch.no_grad():
        layer.weight.add_(1.0)
    assert not torch.equal(copy["weight"], layer.weight)
    assert torch.equal(copy["weight"] + 1.0, layer.weight.detach())


def test_progress_starts_at_the_steps_done():
    bar = progress(10, 4, enabled=False, desc="training episodes")
    assert (bar.n, bar.total, bar.disable) == (4, 10, True)
    bar.close()


def test_saved_weights_reads_a_module_without_a_signature(tmp_path):
    path, stateful, _ = _saved(tmp_path)
    weights = saved_weights(path)
    assert all(torch.equal(weights[k], v) for k, v in stateful["model"].state_dict().items())
    with pytest.raises(RuntimeError, match="unreadable"):
        saved_weights(tmp_path / "missing.pt")


def _with_scaler(enabled: bool):
    """``_setup`` with the gradient scaler a run on that device has: enabled with mixed
    precision (CUDA; an enabled CPU scaler has the same state dict), disabled without (CPU)."""
    stateful, generators = _setup()
    stateful["scaler"] = torch.amp.GradScaler("cpu", enabled=enabled, init_scale=2.0**10)
    return stateful, generators


def test_a_cpu_checkpoint_resumes_with_mixed_precision(tmp_path, capsys):
    """A CPU run saves a disabled scaler ({}); resumed where the scaler is enabled (CUDA),
    ``load_state_dict({})`` used to raise a raw RuntimeError."""
    stateful, generators = _with_scaler(enabled=False)
    _steps(stateful, generators, 2)
    path = tmp_path / "cpu.pt"
    save_atomic(pack(SIGNATURE, {"step": 2}, stateful, generators), path)
    expected = cpu_copy(stateful["model"].state_dict())

    resumed, gens = _with_scaler(enabled=True)
    assert load(path, SIGNATURE, resumed, gens) == {"step": 2}
    assert "without mixed precision" in capsys.readouterr().out
    assert resumed["scaler"].get_scale() == 2.0**10  # its initial scale
    for k, v in resumed["model"].state_dict().items():
        assert torch.equal(v, expected[k]), k


def test_a_mixed_precision_checkpoint_resumes_on_the_cpu(tmp_path):
    """A CUDA run's scaler state (enabled, here at a scale it reached) goes to the CPU run's
    disabled scaler, which ignores it; the weights and optimiser state are restored."""
    stateful, generators = _with_scaler(enabled=True)
    _steps(stateful, generators, 2)
    stateful["scaler"].load_state_dict({**stateful["scaler"].state_dict(), "scale": 64.0})
    path = tmp_path / "cuda.pt"
    save_atomic(pack(SIGNATURE, {"step": 2}, stateful, generators), path)
    expected = cpu_copy(stateful["model"].state_dict())
    exp_opt = stateful["optimiser"].state_dict()["state"][0]["exp_avg"].clone()

    resumed, gens = _with_scaler(enabled=False)
    assert load(path, SIGNATURE, resumed, gens) == {"step": 2}
    assert not resumed["scaler"].is_enabled()
    assert torch.equal(resumed["optimiser"].state_dict()["state"][0]["exp_avg"], exp_opt)
    for k, v in resumed["model"].state_dict().items():
        assert torch.equal(v, expected[k]), k
    # and enabled on both sides, the scale it reached is restored
    again, gens = _with_scaler(enabled=True)
    load(path, SIGNATURE, again, gens)
    assert again["scaler"].get_scale() == 64.0


def test_an_optimiser_state_of_another_set_up_is_a_clear_error(tmp_path):
    path, _, _ = _saved(tmp_path)
    stateful, generators = _setup()
    model = stateful["model"]
    stateful["optimiser"] = torch.optim.Adam(
        [{"params": [model[0].weight]}, {"params": [model[0].bias]}]
    )
    with pytest.raises(ValueError, match="optimiser this run cannot use"):
        load(path, SIGNATURE, stateful, generators)
