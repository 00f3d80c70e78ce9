"""Chapters 5 and 6's shared set-up: the data cut, the test settings, the stage-1 networks.

Their records' names and published cells are tested in test_report_dense.py."""

import pytest
import torch
from torch import nn

from fewshot_utils import data, stage1
from fewshot_utils.dense import fc100_config, stage1_config, stage1_protocol, train_classifier


def _fake_split(split: str, root=None) -> torch.Tensor:
    """A split whose every image says which class and which image it is."""
    n_cls = {"train": 64, "val": 16, "test": 20}[split]
    x = torch.zeros(n_cls, 600, 3, 2, 2, dtype=torch.uint8)
    x[:, :, 0] = torch.arange(n_cls, dtype=torch.uint8)[:, None, None, None]
    x[:, :, 1] = (torch.arange(600) % 256).to(torch.uint8)[None, :, None, None]
    x[:, :, 2] = (torch.arange(600) // 256).to(torch.uint8)[None, :, None, None]
    return x


def _image_index(x: torch.Tensor) -> torch.Tensor:
    return x[..., 1, 0, 0].long() + 256 * x[..., 2, 0, 0].long()


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_data_cut_trains_and_holds_out_disjoint_images(monkeypatch, profile):
    monkeypatch.setattr(data, "load_miniimagenet", _fake_split)
    ts = stage1.test_settings(profile, 5)
    d = stage1.load_stage1_data(profile, ts, val=True)
    proto = stage1_protocol(profile)
    lo, hi = proto["heldout"]
    assert d.protocol == proto
    n_base = proto["train_classes"] or 64
    assert d.train.shape[:2] == (n_base, proto["train_per_class"])
    assert d.heldout.shape[:2] == (n_base, hi - lo)
    trained = set(_image_index(d.train[0]).tolist())
    held = set(_image_index(d.heldout[0]).tolist())
    assert trained == set(range(proto["train_per_class"])) and held == set(range(lo, hi))
    assert d.test.shape[:2] == (ts["test_classes"] or 20, ts["test_per_class"] or 600)
    assert d.val.shape[:2] == (ts["val_classes"] or 16, ts["val_per_class"])
    assert "held-out base" in d.summary() and "validation (novel)" in d.summary()
    without_val = stage1.load_stage1_data(profile, ts)
    assert without_val.val is None and "validation" not in without_val.summary()


def test_test_settings_chapter_6_shares_chapter_5_test_images():
    for profile in ("smoke", "cpu", "full"):
        five, six = stage1.test_settings(profile, 5), stage1.test_settings(profile, 6)
        for key in ("test_classes", "test_per_class", "query"):
            assert five[key] == six[key], (profile, key)
        assert min(six["shots"]) >= 2, "implanting needs leave-one-out subtasks"
    assert stage1.test_settings("full", 5)["episodes"] == 10_000  # the paper's tasks
    assert stage1.test_settings("full", 6)["implant_tasks"] == 5000
    with pytest.raises(ValueError, match="chapter must be 5 or 6"):
        stage1.test_settings("cpu", 7)
    with pytest.raises(ValueError, match="unknown profile"):
        stage1.test_settings("gpu", 5)


class _Net(nn.Module):
    feature_dim = 4

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x.float() / 255)


def test_stage1_network_is_train_classifier_with_the_seed_then_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_CHECKPOINT_DIR", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (4, 6, 3, 8, 8), dtype=torch.uint8, generator=g)
    torch.manual_seed(99)  # the function seeds itself
    run = stage1.stage1_network(_Net, "dc", "t_net", train, "smoke", seed=3, device="cpu")
    assert stage1.stage1_checkpoint("t_net", "smoke", 3) == tmp_path / "t_net_smoke_seed3.pt"
    assert (tmp_path / "t_net_smoke_seed3.pt").exists() and not run.loaded
    torch.manual_seed(3)
    direct = train_classifier(_Net(), train, stage1_config("smoke", "dc", 3), device="cpu")
    for k, v in direct.model.state_dict().items():
        torch.testing.assert_close(run.model.state_dict()[k], v, msg=k)
    again = stage1.stage1_network(_Net, "dc", "t_net", train, "smoke", seed=3, device="cpu")
    assert again.loaded
    torch.testing.assert_close(again.classifier.weight, run.classifier.weight)


def test_stage1_network_on_fc100_uses_fc100_config(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_CHECKPOINT_DIR", str(tmp_path))
    g = torch.Generator().manual_seed(1)
    train = torch.randint(0, 256, (3, 8, 3, 8, 8), dtype=torch.uint8, generator=g)
    run = stage1.stage1_network(_Net, "gap", "fc", train, "smoke", 2, device="cpu", dataset="fc100")
    assert (tmp_path / "fc_smoke_seed2.pt").exists()
    torch.manual_seed(2)
    direct = train_classifier(_Net(), train, fc100_config("smoke", "gap", 2), device="cpu")
    torch.testing.assert_close(run.classifier.weight, direct.classifier.weight)
    assert float(run.classifier.tau.detach()) != 10.0, "FC100's tau starts at 100 (fc100_config)"
    with pytest.raises(ValueError, match="dataset must be one of"):
        stage1.stage1_network(_Net, "gap", "fc", train, "smoke", dataset="cifar")


def test_load_fc100_without_cifar_says_why_and_returns_none(data_home, capsys):
    assert stage1.load_fc100("smoke") is None
    assert "FC100 skipped:" in capsys.readouterr().out
