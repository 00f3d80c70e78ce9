"""The shared training loop, on a one-weight model whose validation scores are scripted: best
epoch, early stopping, a cut last epoch, exact resume and loading a finished run."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from fewshot_utils import checkpoints
from fewshot_utils.training import _fresh_state, train_epochs


class Run:
    """A trainer in miniature: every step adds a draw of its own generator and one of torch's
    global RNG to the weight (so a resume that restores either wrongly changes the weight);
    the validation loss of epoch ``e`` is ``losses[e - 1]``."""

    def __init__(self, losses, path=None, stop_after=None):
        torch.manual_seed(0)
        self.model = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(self.model.weight)
        self.gen = torch.Generator().manual_seed(1)
        self.losses = losses
        self.stop_after = stop_after
        self.ticks = 0
        self.epochs_seen = []
        self.weights = []  # the weight at the end of every epoch trained here
        self.ckpt = checkpoints.Checkpoint(
            path, {"losses": losses}, {"model": self.model}, {"g": self.gen}
        )

    def steps(self, state, n, tick):
        assert self.model.training  # the loop sets train mode
        with torch.no_grad():
            for _ in range(n):
                draw = torch.rand((), generator=self.gen) + torch.rand(())
                self.model.weight += draw
                tick()
                self.ticks += 1
        return n

    def end_epoch(self, state, n, seconds):
        self.weights.append(self.weight)
        self.model.eval()  # a validation may leave eval mode: the next epoch must reset it
        h = state["history"]
        h["episode"].append(state["episode"])
        h["val_loss"].append(self.losses[len(h["episode"]) - 1])
        h["steps"].append(n)
        val = SimpleNamespace(loss=h["val_loss"][-1], accuracy=1 - h["val_loss"][-1])
        return val, {}

    def on_epoch_end(self, epoch, history):
        self.epochs_seen.append(epoch)
        if epoch == self.stop_after:
            raise KeyboardInterrupt

    def train(self, total, epoch_steps=2, **kw):
        state = _fresh_state(self.model, ("episode", "val_loss", "steps"))
        return train_epochs(
            self.model,
            state,
            self.ckpt,
            self.steps,
            self.end_epoch,
            total=total,
            epoch_steps=epoch_steps,
            on_epoch_end=self.on_epoch_end,
            progress=False,
            **kw,
        )

    @property
    def weight(self):
        return self.model.weight.detach().clone()


LOSSES = [3.0, 2.0, 2.5, 1.0, 1.5, 1.0, 1.1, 0.5]


def test_best_epoch_is_kept_and_patience_stops_the_run():
    run = Run(LOSSES)
    state, resumed, loaded = run.train(16, select_on="loss", patience=2)
    # best loss 1.0 at epoch 4; epochs 5 and 6 (a tie) do not beat it: stop after 6 of 8
    assert state["history"]["val_loss"] == LOSSES[:6]
    assert state["best_epoch"] == 4 and state["bad_epochs"] == 2 and state["finished"]
    assert state["episode"] == 12 and run.ticks == 12 and run.epochs_seen == [1, 2, 3, 4, 5, 6]
    assert not resumed and not loaded
    assert torch.equal(run.weight, run.weights[3])  # epoch 4's weights, not the last ones
    assert not torch.equal(run.weight, run.weights[5])


def test_selection_on_accuracy_and_no_selection():
    run = Run([0.5, 0.2, 0.4, 0.3])  # accuracies 0.5, 0.8, 0.6, 0.7: best epoch 2
    state, _, _ = run.train(8, select_on="accuracy", patience=3)
    assert state["best_epoch"] == 2 and state["bad_epochs"] == 2 and state["episode"] == 8
    assert torch.equal(run.weight, run.weights[1])
    plain = Run([0.5, 0.2, 0.4, 0.3])
    state, _, _ = plain.train(8)  # no selection: the last weights are kept
    assert state["best_epoch"] == 0 and torch.equal(plain.weight, plain.weights[3])


def test_the_last_epoch_is_cut_to_what_remains():
    run = Run(LOSSES)
    state, _, _ = run.train(7, epoch_steps=3)
    assert state["history"]["episode"] == [3, 6, 7] and state["history"]["steps"] == [3, 3, 1]
    assert run.ticks == 7 and state["finished"]


def test_an_interrupted_run_resumes_exactly(tmp_path):
    whole = Run(LOSSES, tmp_path / "whole.pt")
    ref, _, _ = whole.train(12, select_on="loss")
    cut = Run(LOSSES, tmp_path / "cut.pt", stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        cut.train(12, select_on="loss")
    again = Run(LOSSES, tmp_path / "cut.pt")
    torch.manual_seed(123)  # the global RNG must come from the checkpoint, not from here
    state, resumed, loaded = again.train(12, select_on="loss")
    assert resumed and not loaded
    assert again.ticks == 8 and again.epochs_seen == [3, 4, 5, 6]
    assert state["history"] == ref["history"] and state["best_epoch"] == ref["best_epoch"] == 4
    assert torch.equal(again.weight, whole.weight)
    assert torch.equal(again.weights[-1], whole.weights[-1])  # the last epoch's too


def test_a_finished_run_is_loaded_without_training_unless_retrain(tmp_path):
    first = Run(LOSSES, tmp_path / "run.pt")
    first.train(8, select_on="loss")
    loaded_run = Run(LOSSES, tmp_path / "run.pt")
    state, resumed, loaded = loaded_run.train(8, select_on="loss")
    assert resumed and loaded and loaded_run.ticks == 0
    assert torch.equal(loaded_run.weight, first.weight)  # the best epoch's weights
    again = Run(LOSSES, tmp_path / "run.pt")
    state, resumed, loaded = again.train(8, select_on="loss", retrain=True)
    assert not resumed and not loaded and again.ticks == 8
    assert torch.equal(again.weight, first.weight)
