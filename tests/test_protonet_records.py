"""Chapters 3 and 4's records: the published numbers they set beside their models
(``paper_numbers.protonet_accuracy``) and the record of a trained and tested network
(``results.protonet_record``)."""

from types import SimpleNamespace

import pytest
import torch

from fewshot_utils.evaluation import EvalResult
from fewshot_utils.paper_numbers import by_id, protonet_accuracy
from fewshot_utils.results import make_record, protonet_record

LSED, SNELL = "shen2018lsed", "snell2017prototypical"


@pytest.mark.parametrize(
    ("args", "cell"),
    [
        ((LSED, "squared_euclidean", "omniglot", 20, 1), "shen2018lsed/table-1/protonet"),
        ((LSED, "lsed", "omniglot", 20, 5), "shen2018lsed/table-1/protonet-lsed"),
        ((LSED, "lsed", "miniimagenet", 5, 1), "shen2018lsed/table-1/protonet-lsed"),
        (
            (SNELL, "squared_euclidean", "omniglot", 5, 1),
            "snell2017prototypical/table-1/prototypical-networks",
        ),
        (
            (SNELL, "squared_euclidean", "miniimagenet", 5, 5),
            "snell2017prototypical/table-2/prototypical-networks",
        ),
    ],
)
def test_protonet_accuracy_is_the_published_cell_as_a_fraction(args, cell):
    dataset, way, shot = args[2:]
    expected = by_id(f"{cell}/{dataset}/{way}w{shot}s").accuracy / 100
    assert protonet_accuracy(*args) == expected
    assert 0 < expected < 1


def test_protonet_accuracy_is_none_where_the_paper_prints_nothing():
    assert protonet_accuracy(LSED, "lsed", "omniglot", 5, 1) is None  # LSED: 20-way only
    assert protonet_accuracy(SNELL, "lsed", "omniglot", 20, 1) is None  # Snell: no LSED
    assert protonet_accuracy(LSED, "lsed", "miniimagenet", 20, 1) is None  # no such column
    # the two distances' LSED rows differ: the method picks the row
    lsed = protonet_accuracy(LSED, "lsed", "miniimagenet", 5, 1)
    assert lsed != protonet_accuracy(LSED, "squared_euclidean", "miniimagenet", 5, 1)


@pytest.mark.parametrize(
    "args",
    [
        ("lsed_paper", "lsed", "omniglot", 20, 1),  # a chapter's old nickname for the paper
        (LSED, "cosine", "omniglot", 20, 1),
        (LSED, "lsed", "mini", 5, 1),  # a typo would otherwise record no paper number
    ],
)
def test_protonet_accuracy_rejects_what_it_cannot_look_up(args):
    with pytest.raises(ValueError, match="protonet_accuracy"):
        protonet_accuracy(*args)


def _run():
    history = {
        "episode": [3, 6],
        "train_loss": [2.0, 1.5],
        "val_acc": [0.4, 0.5],
        "train_seconds": [1.0, 1.0],
        "val_per_episode": [[0.4, 0.4], [0.5, 0.5]],
    }
    return SimpleNamespace(
        wall_time_s=10.1, episodes_done=6, best_epoch=2, episodes_per_s=3.0, history=history
    )


def _result():
    acc = torch.tensor([0.5, 0.75, 1.0])
    return EvalResult(0.75, 0.28, 0.9, 3, acc, way=5, shot=1, query=15)


def _without_clock(record):
    return {k: v for k, v in record.items() if k != "created"}


@pytest.mark.parametrize(("profile", "stage"), [("cpu", "early training"), ("full", "protocol")])
def test_protonet_record_is_the_record_the_chapters_wrote_by_hand(profile, stage):
    run, res = _run(), _result()
    config = {"way": 60, "shot": 1, "query": 5, "backbone": "conv4-576"}
    record = protonet_record(
        "ch03_protonet_omniglot", "omniglot", "lsed", res, run, config, profile, "cpu",
        test_seconds=(0.7, 0.2), train_shot=1, paper_accuracy=0.9565,
    )  # fmt: skip
    by_hand = make_record(  # chapter 3's call before protonet_record existed
        experiment="ch03_protonet_omniglot",
        dataset="omniglot",
        method="lsed",
        result=res,
        profile=profile,
        device="cpu",
        wall_time_s=run.wall_time_s + 0.7 + 0.2,
        config=config,
        train_shot=1,
        train_episodes=run.episodes_done,
        best_epoch=run.best_epoch,
        train_episodes_per_s=run.episodes_per_s,
        training_stage=stage,
        history={k: v for k, v in run.history.items() if k != "val_per_episode"},
        paper_accuracy=0.9565,
    )
    assert _without_clock(record) == _without_clock(by_hand)
    assert record["training_stage"] == stage
    assert "val_per_episode" not in record["history"]
    assert "val_per_episode" in run.history, "the run's own history must stay whole"
    assert record["way"] == 5 and record["query"] == 15, "the test's tasks, not the training's"


def test_protonet_record_wall_time_is_training_plus_testing():
    run = _run()
    tested = protonet_record(
        "x", "omniglot", "lsed", _result(), run, {}, "cpu", "cpu", test_seconds=(2.0, 0.5)
    )
    assert tested["wall_time_s"] == 12.6
    untested = protonet_record("x", "omniglot", "lsed", _result(), run, {}, "cpu", "cpu")
    assert untested["wall_time_s"] == 10.1
