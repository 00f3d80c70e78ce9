"""FC100 loader on a small CIFAR-100-format dataset made here (CIFAR-100 is not offline)."""

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot_utils import data

SUPER = [s for split in ("train", "val", "test") for s in data.fc100_superclasses(split)]


def _fake_cifar(per_train=3, per_test=1, shuffle_coarse=True):
    """100 fine classes, 5 per superclass; pixel [0, 0, 0] = fine label, [0, 0, 1] = index
    within the class (training images first), so the loader's output can be traced back."""
    rng = np.random.default_rng(0)
    coarse_names = list(SUPER)
    if shuffle_coarse:
        rng.shuffle(coarse_names)
    fine_to_coarse = rng.permutation(np.repeat(np.arange(20), 5))
    parts = {}
    for part, per, offset in (("train", per_train, 0), ("test", per_test, per_train)):
        fine = np.repeat(np.arange(100), per)
        order = rng.permutation(len(fine))  # CIFAR files are not sorted by class
        fine = fine[order]
        idx = np.tile(np.arange(per), 100)[order] + offset
        images = rng.integers(0, 256, (len(fine), 3, 32, 32), dtype=np.uint8)
        images[:, 0, 0, 0] = fine
        images[:, 0, 0, 1] = idx
        parts[part] = {
            "data": images.reshape(len(fine), -1),
            "fine_labels": fine.tolist(),
            "coarse_labels": fine_to_coarse[fine].tolist(),
        }
    parts["meta"] = {
        "fine_label_names": [f"class{f:02d}" for f in range(100)],
        "coarse_label_names": coarse_names,
    }
    return parts, fine_to_coarse, coarse_names


def _write_archive(path, parts):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in parts.items():
            raw = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def _check_split(x, split, fine_to_coarse, coarse_names, per_class, per_train):
    wanted = {coarse_names.index(s) for s in data.fc100_superclasses(split)}
    expected = sorted(f for f in range(100) if fine_to_coarse[f] in wanted)
    assert x.dtype == torch.uint8 and x.shape == (len(expected), per_class, 3, 32, 32)
    assert x[:, :, 0, 0, 0].tolist() == [[f] * per_class for f in expected]
    idx = x[:, :, 0, 0, 1]  # training images (in file order) first, then test images
    assert (idx.sort(1).values == torch.arange(per_class)).all()
    assert (idx[:, :per_train] < per_train).all()


def test_split_files_shipped():
    sizes = {s: len(data.fc100_superclasses(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 12, "val": 4, "test": 4}
    assert len(set(SUPER)) == 20, "the three splits share no superclass"


def test_from_archive_in_data_dir(data_home):
    parts, f2c, names = _fake_cifar()
    _write_archive(data_home / "cifar100" / "cifar-100-python.tar.gz", parts)
    for split, n in (("train", 60), ("val", 20), ("test", 20)):
        x = data.load_fc100(split)
        assert x.shape[0] == n
        _check_split(x, split, f2c, names, per_class=4, per_train=3)
    meta = json.loads((data_home / "cifar100" / "fc100_test_32.json").read_text())
    assert len(meta["classes"]) == 20 and meta["superclasses"] == data.fc100_superclasses("test")
    assert not list((data_home / "cifar100").glob("*.tmp"))


def test_from_extracted_folder_and_from_mirror(data_home, tmp_path, monkeypatch):
    parts, f2c, names = _fake_cifar(per_train=2, per_test=2)
    folder = data_home / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, obj in parts.items():
        (folder / name).write_bytes(pickle.dumps(obj))
    _check_split(data.load_fc100("val"), "val", f2c, names, per_class=4, per_train=2)
    mirror = tmp_path / "mirror"
    _write_archive(mirror / "cifar100" / "cifar-100-python.tar.gz", parts)
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(mirror))
    other = tmp_path / "other"
    monkeypatch.setenv("FEWSHOT_DATA_DIR", str(other))
    _check_split(data.load_fc100("train"), "train", f2c, names, per_class=4, per_train=2)
    assert not (mirror / "cifar100" / "fc100_train_32.npy").exists(), "nothing written to mirror"


def test_missing_data_names_the_files(data_home):
    with pytest.raises(data.DataError) as err:
        data.load_fc100("test")
    msg = str(err.value)
    assert "could not be downloaded" in msg and "cifar-100-python.tar.gz" in msg
    assert data.CIFAR100_URL in msg and "FEWSHOT_DATA_MIRROR" in msg


def test_truncated_archive_and_wrong_split(data_home):
    parts, _, _ = _fake_cifar()
    path = data_home / "cifar100" / "cifar-100-python.tar.gz"
    _write_archive(path, parts)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(data.DataError, match="truncated or not a tar.gz"):
        data.load_fc100("train")
    assert not (data_home / "cifar100" / "fc100_train_32.npy").exists()
    with pytest.raises(ValueError, match="unknown fc100 split"):
        data.load_fc100("trainval")


def test_unequal_classes_rejected(data_home):
    parts, _, _ = _fake_cifar()
    parts["test"]["fine_labels"][0] = (parts["test"]["fine_labels"][0] + 1) % 100
    _write_archive(data_home / "cifar100" / "cifar-100-python.tar.gz", parts)
    with pytest.raises(data.DataError, match="unequal images per class"):
        data.load_fc100("train")


@pytest.mark.slow
def test_chapter_6_implants_and_records_fc100(real_data_dir, data_home, tmp_path, monkeypatch):
    """Chapter 6's FC100 section on a small CIFAR-100-format archive (CIFAR-100 itself is not
    offline): it trains the FC100 DC network when chapter 5's is missing, implants with that
    network's own tau and reaches the records (its published numbers from paper_numbers; the
    smoke profile's shots once raised KeyError in a typed-in table)."""
    import nbformat
    import papermill

    for sub in ("miniimagenet", "omniglot"):
        if not (real_data_dir / sub).is_dir():
            pytest.skip(f"no decoded {sub} cache in {real_data_dir}")
    data_home.mkdir(parents=True)
    for sub in ("miniimagenet", "omniglot"):
        (data_home / sub).symlink_to(real_data_dir / sub)
    parts, _, _ = _fake_cifar(per_train=20, per_test=5)
    _write_archive(data_home / "cifar100" / "cifar-100-python.tar.gz", parts)
    monkeypatch.setenv("FEWSHOT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("FEWSHOT_RESULTS_DIR", str(tmp_path / "results"))
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "06.ipynb"
    papermill.execute_notebook(
        str(root / "notebooks" / "06_implanting.ipynb"),
        str(out),
        parameters={"PROFILE": "smoke"},
        progress_bar=False,
        kernel_name="python3",
        cwd=str(root),
    )
    text = "\n".join(
        o.get("text", "")
        for c in nbformat.read(out, as_version=4).cells
        for o in c.get("outputs", [])
    )
    assert "FC100 skipped" not in text
    for shot in (2, 5):  # the smoke profile's shots
        assert f"FC100 5-way {shot}-shot (tau " in text
