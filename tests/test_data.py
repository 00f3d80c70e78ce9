"""Data loaders on tiny synthetic Omniglot / miniImageNet built in tmp_path, the shipped
split files, and (when available) the real data. No test touches the network."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.utils as tv_utils
from PIL import Image, ImageDraw

from fewshot_utils import data
from fewshot_utils.data import (
    DataError,
    load_miniimagenet,
    load_omniglot,
    main,
    prepare,
    split_names,
)

LANCZOS = Image.Resampling.LANCZOS
BICUBIC = Image.Resampling.BICUBIC

# --------------------------------------------------------------------------- tiny Omniglot

# archive -> characters; 3 characters in all, 20 drawers each (as the real data).
TINY_CHARS = {
    "images_background": ["Alpha/character01", "Alpha/character02"],
    "images_evaluation": ["Beta/character01"],
}
ALL_CHARS = [c for chars in TINY_CHARS.values() for c in chars]
# Split files in an order that is neither sorted nor grouped by rotation.
TINY_SPLITS = {
    "train": [
        "Beta/character01/rot270",
        "Alpha/character01/rot000",
        "Alpha/character01/rot090",
        "Alpha/character02/rot180",
    ],
    "val": ["Alpha/character02/rot000"],
    "test": ["Beta/character01/rot000", "Beta/character01/rot090"],
}
TINY_SPLITS["trainval"] = TINY_SPLITS["train"] + TINY_SPLITS["val"]


def _rect(char: int, drawer: int) -> tuple[int, int, int, int]:
    """An off-centre, non-square ink rectangle (x0, y0, x1, y1), distinct per image."""
    x0, y0 = 6 + 4 * char, 10 + 2 * drawer
    return x0, y0, x0 + 50, y0 + 24


def omniglot_png(char: int, drawer: int, size=(105, 105)) -> bytes:
    """A 1-bit PNG like Omniglot's: white background (1), black ink (0)."""
    img = Image.new("1", size, 1)
    ImageDraw.Draw(img).rectangle(_rect(char, drawer), fill=0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def omniglot_members(archive: str) -> dict[str, bytes]:
    """``{archive/Alphabet/characterNN/<id>_<drawer>.png: PNG bytes}`` of one tiny archive."""
    out = {}
    for name in TINY_CHARS[archive]:
        c = ALL_CHARS.index(name)
        for d in range(1, 21):
            out[f"{archive}/{name}/{c + 1:02d}{c + 1:02d}_{d:02d}.png"] = omniglot_png(c, d)
    return out


def expected_character(c: int) -> np.ndarray:
    """Independent decode of character ``c``: [20, 28, 28], ink bright."""
    imgs = []
    for d in range(1, 21):
        small = Image.open(io.BytesIO(omniglot_png(c, d))).convert("L").resize((28, 28), LANCZOS)
        imgs.append(255 - np.asarray(small))
    return np.stack(imgs)


def expected_split(split: str) -> np.ndarray:
    out = []
    for name in TINY_SPLITS[split]:
        alphabet, character, rot = name.split("/")
        base = expected_character(ALL_CHARS.index(f"{alphabet}/{character}"))
        out.append(np.rot90(base, int(rot[3:]) // 90, axes=(1, 2)))
    return np.stack(out)


def write_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return path


def write_tree(root: Path, members: dict[str, bytes]) -> None:
    for name, raw in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(raw)


@pytest.fixture
def tiny_omniglot(monkeypatch, data_home):
    """Tiny Omniglot archive constants and split files; returns the data home."""
    archives = tuple(
        dataclasses.replace(a, characters=len(TINY_CHARS[a.name])) for a in data.OMNIGLOT_ARCHIVES
    )
    monkeypatch.setattr(data, "OMNIGLOT_ARCHIVES", archives)
    real_split_file = data._split_file

    def split_file(folder: str, name: str) -> str:
        if folder == "omniglot_vinyals":
            return "\n".join(TINY_SPLITS[name.removesuffix(".txt")]) + "\n"
        return real_split_file(folder, name)

    monkeypatch.setattr(data, "_split_file", split_file)
    return data_home


@pytest.fixture
def omniglot_mirror(tmp_path, monkeypatch, tiny_omniglot) -> Path:
    mirror = tmp_path / "mirror"
    for archive in TINY_CHARS:
        write_zip(mirror / "omniglot" / f"{archive}.zip", omniglot_members(archive))
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(mirror))
    return mirror


def assert_tiny_omniglot_loads():
    for split in TINY_SPLITS:
        x = load_omniglot(split)
        assert x.dtype == torch.uint8 and x.shape == (len(TINY_SPLITS[split]), 20, 28, 28)
        np.testing.assert_array_equal(x.numpy(), expected_split(split))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ----------------------------------------------------------------- Omniglot: happy paths


def test_omniglot_from_mirror_zips_values_and_no_write_into_mirror(omniglot_mirror, data_home):
    before = snapshot(omniglot_mirror)
    assert_tiny_omniglot_loads()
    assert snapshot(omniglot_mirror) == before, "the mirror is read in place, never written"
    cache = data_home / "omniglot" / "omniglot_28.npy"
    assert cache.exists()
    meta = json.loads(cache.with_suffix(".json").read_text())
    assert meta["characters"] == ALL_CHARS and meta["inverted"] is True
    assert not list(data_home.rglob("*.tmp")) and not list(data_home.rglob("*.part"))


def test_omniglot_ink_is_bright_and_rotations(omniglot_mirror):
    train, val, test = (load_omniglot(s).numpy() for s in ("train", "val", "test"))
    img = train[1, 0]  # Alpha/character01/rot000, drawer 1: rectangle (6, 12)-(56, 36) of 105
    assert img[0, 0] == img[-1, -1] == img[27, 0] == 0, "background is black"
    assert img[round(24 * 28 / 105), round(31 * 28 / 105)] == 255, "ink centre is bright"
    assert img.mean() < 64
    # wide rectangle: more bright columns than rows, swapped by a 90-degree rotation
    assert (img > 127).any(0).sum() > (img > 127).any(1).sum()
    np.testing.assert_array_equal(train[2], np.rot90(train[1], 1, axes=(1, 2)))
    np.testing.assert_array_equal(train[3], np.rot90(val[0], 2, axes=(1, 2)))
    np.testing.assert_array_equal(train[0], np.rot90(test[0], 3, axes=(1, 2)))
    np.testing.assert_array_equal(test[1], np.rot90(test[0], 1, axes=(1, 2)))
    assert not np.array_equal(train[1, 0], train[1, 1]), "drawers differ"


def test_omniglot_from_local_zips_in_data_dir(tiny_omniglot):
    for archive in TINY_CHARS:
        write_zip(tiny_omniglot / "omniglot" / f"{archive}.zip", omniglot_members(archive))
    assert_tiny_omniglot_loads()


def test_omniglot_from_extracted_folders_and_root_argument(tiny_omniglot, tmp_path):
    root = tmp_path / "elsewhere"
    for archive in TINY_CHARS:
        write_tree(root / "omniglot", omniglot_members(archive))
    x = load_omniglot("test", root=root)
    np.testing.assert_array_equal(x.numpy(), expected_split("test"))
    assert (root / "omniglot" / "omniglot_28.npy").exists()
    assert not tiny_omniglot.exists(), "root= overrides FEWSHOT_DATA_DIR"


def test_omniglot_second_call_reads_only_the_cache(omniglot_mirror, monkeypatch):
    first = {s: load_omniglot(s) for s in TINY_SPLITS}
    for z in (omniglot_mirror / "omniglot").glob("*.zip"):
        z.unlink()
    monkeypatch.delenv("FEWSHOT_DATA_MIRROR")

    def no_decode(*args):
        raise AssertionError("sources touched although the cache exists")

    monkeypatch.setattr(data, "_decode_omniglot_archive", no_decode)
    for s, x in first.items():
        assert torch.equal(load_omniglot(s), x)


def test_omniglot_download_path_with_md5(tiny_omniglot, monkeypatch):
    zips = {}
    for a in TINY_CHARS:
        zips[a] = io.BytesIO()
        with zipfile.ZipFile(zips[a], "w") as zf:
            for name, raw in omniglot_members(a).items():
                zf.writestr(name, raw)
    archives = tuple(
        dataclasses.replace(a, md5=hashlib.md5(zips[a.name].getvalue()).hexdigest())
        for a in data.OMNIGLOT_ARCHIVES
    )
    monkeypatch.setattr(data, "OMNIGLOT_ARCHIVES", archives)
    urls = []

    def fake_download(url, root, filename=None, md5=None, **kwargs):
        urls.append(url)
        name = Path(url).stem
        Path(root, filename).write_bytes(zips[name].getvalue())

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    assert_tiny_omniglot_loads()
    assert urls == [a.url for a in archives]
    base = tiny_omniglot / "omniglot"
    assert sorted(p.name for p in base.glob("*.zip")) == [f"{a}.zip" for a in TINY_CHARS]
    assert not list(base.glob("*.part"))


# ----------------------------------------------------------------- Omniglot: errors


def test_omniglot_offline_message_names_files_urls_and_mirror(tiny_omniglot, monkeypatch):
    def offline(archive, base):
        raise OSError("no route to host")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DataError, match="Omniglot is not available") as err:
        load_omniglot("test")
    msg = str(err.value)
    base = tiny_omniglot / "omniglot"
    for a in data.OMNIGLOT_ARCHIVES:
        assert f"{base / (a.name + '.zip')}  <- {a.url} (md5 {a.md5})" in msg
    assert "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/" in msg
    assert str(base / "images_background") in msg and str(base / "images_evaluation") in msg
    assert "FEWSHOT_DATA_MIRROR" in msg and "no route to host" in msg
    assert "(now" not in msg


def test_omniglot_offline_real_download_function_and_mirror_lacking(
    tiny_omniglot, tmp_path, monkeypatch
):
    # data_home makes torchvision's download_url raise OSError: the real _download runs.
    mirror = tmp_path / "empty_mirror"
    mirror.mkdir()
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(mirror))
    with pytest.raises(DataError, match=re.escape(f"(now {mirror}, which lacks them)")) as err:
        load_omniglot("train")
    assert "network access is disabled" in str(err.value)
    assert not list((tiny_omniglot / "omniglot").glob("*.part"))
    assert not list(mirror.iterdir())


def test_omniglot_download_md5_mismatch_leaves_no_file(tiny_omniglot, monkeypatch):
    real_check = tv_utils.check_integrity

    def corrupted_download(url, root, filename=None, md5=None, **kwargs):
        # as torchvision's: the file stays on disk, then a bare RuntimeError if md5 is given
        Path(root, filename).write_bytes(b"PK\x03\x04 not the archive you are looking for")
        if md5 is not None and not real_check(Path(root, filename), md5):
            raise RuntimeError("File not found or corrupted.")

    monkeypatch.setattr(tv_utils, "download_url", corrupted_download)
    with pytest.raises(
        DataError, match=r"^downloaded https://\S+images_background\.zip but its MD5"
    ):
        load_omniglot("train")
    assert list((tiny_omniglot / "omniglot").iterdir()) == []


def test_omniglot_interrupted_download_leaves_no_partial_file(tiny_omniglot, monkeypatch):
    def interrupted(url, root, filename=None, md5=None, **kwargs):
        Path(root, filename).write_bytes(b"PK\x03\x04 half")
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(tv_utils, "download_url", interrupted)
    with pytest.raises(DataError, match="could not be downloaded.*connection reset"):
        load_omniglot("train")
    assert list((tiny_omniglot / "omniglot").iterdir()) == []


def test_omniglot_mirror_not_a_folder(tiny_omniglot, tmp_path, monkeypatch):
    not_dir = tmp_path / "mirror.txt"
    not_dir.write_text("")
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(not_dir))
    with pytest.raises(DataError, match=r"FEWSHOT_DATA_MIRROR='.*mirror\.txt' is not a folder"):
        load_omniglot("train")


def _local_zip(home: Path, archive: str, members: dict[str, bytes], **kw) -> Path:
    return write_zip(home / "omniglot" / f"{archive}.zip", members, **kw)


def test_omniglot_truncated_zip(tiny_omniglot):
    z = _local_zip(tiny_omniglot, "images_background", omniglot_members("images_background"))
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(DataError, match=r"images_background\.zip is not a readable zip archive"):
        load_omniglot("train")


def _corrupt_first_member(z: Path, value: int) -> None:
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[0]
    raw = bytearray(z.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start : start + 4] = bytes([value]) * 4
    z.write_bytes(bytes(raw))


def test_omniglot_zip_member_fails_crc(tiny_omniglot):
    members = omniglot_members("images_background")
    z = _local_zip(tiny_omniglot, "images_background", members, compression=zipfile.ZIP_STORED)
    _corrupt_first_member(z, 0x00)
    with pytest.raises(DataError, match=r"member images_background/\S+ fails its CRC check"):
        load_omniglot("train")


def test_omniglot_zip_corrupt_deflate_stream(tiny_omniglot):
    # 0xFF as the first deflate byte is the reserved block type: zlib.error, not BadZipFile
    z = _local_zip(tiny_omniglot, "images_background", omniglot_members("images_background"))
    _corrupt_first_member(z, 0xFF)
    with pytest.raises(DataError, match="is not a readable zip archive"):
        load_omniglot("train")


def test_omniglot_zip_missing_character(tiny_omniglot):
    members = {
        k: v for k, v in omniglot_members("images_background").items() if "character02" not in k
    }
    _local_zip(tiny_omniglot, "images_background", members)
    with pytest.raises(DataError, match="found 1 characters, expected 2") as err:
        load_omniglot("train")
    assert "images_background/<Alphabet>/<characterNN>" in str(err.value)


def test_omniglot_zip_wrong_number_of_images(tiny_omniglot):
    members = omniglot_members("images_background")
    del members["images_background/Alpha/character02/0202_07.png"]
    _local_zip(tiny_omniglot, "images_background", members)
    with pytest.raises(DataError, match="character Alpha/character02 has 19 images, expected 20"):
        load_omniglot("train")


def test_omniglot_image_of_wrong_size(tiny_omniglot):
    members = omniglot_members("images_background")
    members["images_background/Alpha/character01/0101_03.png"] = omniglot_png(0, 3, (100, 105))
    _local_zip(tiny_omniglot, "images_background", members)
    with pytest.raises(DataError, match=r"0101_03\.png is 100x105, expected 105x105"):
        load_omniglot("train")


def test_omniglot_unreadable_image_in_folder(tiny_omniglot):
    members = omniglot_members("images_background")
    members["images_background/Alpha/character01/0101_04.png"] = b"\x89PNG\r\n\x1a\n broken"
    write_tree(tiny_omniglot / "omniglot", members)
    with pytest.raises(DataError, match=r"0101_04\.png is not a readable image"):
        load_omniglot("train")


def test_omniglot_split_class_not_in_data(omniglot_mirror, monkeypatch):
    monkeypatch.setitem(TINY_SPLITS, "val", ["Gamma/character01/rot000"])
    with pytest.raises(DataError, match="'Gamma/character01/rot000' is not among the decoded"):
        load_omniglot("val")


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda p: p.write_bytes(b"not a numpy file at all" * 4), "is unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "is unreadable"),
        (lambda p: p.write_bytes(b""), "is unreadable"),
        (
            lambda p: np.save(p, np.zeros((2, 20, 28, 28), np.uint8)),
            re.escape("holds uint8[2, 20, 28, 28], expected uint8[3, 20, 28, 28]"),
        ),
        (lambda p: np.save(p, np.zeros((3, 20, 28, 28), np.float32)), "holds float32"),
        (lambda p: p.with_suffix(".json").unlink(), "cache metadata .* is missing or corrupt"),
        (lambda p: p.with_suffix(".json").write_text("{"), "cache metadata .* is missing"),
        (
            lambda p: p.with_suffix(".json").write_text('{"characters": ["a"]}'),
            "1 names for 3 characters",
        ),
    ],
    ids=["garbage", "truncated", "empty", "shape", "dtype", "no-meta", "bad-meta", "short-meta"],
)
def test_omniglot_bad_cache(omniglot_mirror, data_home, corrupt, match):
    load_omniglot("val")
    cache = data_home / "omniglot" / "omniglot_28.npy"
    corrupt(cache)
    with pytest.raises(DataError, match=match) as err:
        load_omniglot("val")
    assert "load again" in str(err.value)


def test_omniglot_crash_while_writing_cache_then_rebuild(omniglot_mirror, data_home, monkeypatch):
    written = []

    def crash(file, array, *args, **kwargs):
        written.append(Path(file.name))
        file.write(b"\x93NUMPY\x01\x00 half a header")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(data.np, "save", crash)
        with pytest.raises(OSError, match="No space left"):
            load_omniglot("train")
    base = data_home / "omniglot"
    # written under another name in the same folder (a hard kill could not leave a torn cache)
    assert len(written) == 1 and written[0].parent == base
    assert written[0].name != "omniglot_28.npy"
    assert not (base / "omniglot_28.npy").exists()
    assert not list(base.glob("*.tmp")), "temporaries are removed"
    assert_tiny_omniglot_loads()
    assert (base / "omniglot_28.npy").exists()


@pytest.mark.parametrize(
    "call",
    [
        lambda: load_omniglot("bogus"),
        lambda: load_miniimagenet("trainval"),
        lambda: split_names("omniglot", "validation"),
        lambda: split_names("cifar", "train"),
    ],
)
def test_unknown_split_or_dataset(call, data_home):
    with pytest.raises(ValueError, match="unknown|choose"):
        call()
    assert not data_home.exists()


# --------------------------------------------------------------------------- tiny miniImageNet

TINY_MINI = {"train": 2, "val": 1, "test": 1}
PER_CLASS = 3
# CSV order: classes not sorted, images within a class not sorted.
MINI_ROWS = {
    "train": [("n02000000", 3), ("n02000000", 1), ("n02000000", 2)]
    + [("n01000000", 2), ("n01000000", 3), ("n01000000", 1)],
    "val": [("n03000000", 2), ("n03000000", 1), ("n03000000", 3)],
    "test": [("n04000000", 1), ("n04000000", 2), ("n04000000", 3)],
}


def mini_name(label: str, i: int) -> str:
    return f"{label}{i:08d}.jpg"


def mini_jpeg(label: str, i: int, size=(84, 84)) -> bytes:
    """A smooth RGB image, distinct per (class, index)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    k = int(label[1:3]) * 10 + i
    rgb = np.stack([(xx * 3 + k * 20) % 256, (yy * 2 + k * 7) % 256, (xx + yy + k * 50) % 256])
    img = Image.fromarray(rgb.transpose(1, 2, 0).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def mini_files(size=(84, 84)) -> dict[str, bytes]:
    files = {
        mini_name(lab, i): mini_jpeg(lab, i, size) for rows in MINI_ROWS.values() for lab, i in rows
    }
    files[mini_name("n09000000", 1)] = mini_jpeg("n09000000", 1)  # not in any CSV: ignored
    return files


def expected_mini(split: str, files: dict[str, bytes], resize: bool = False) -> np.ndarray:
    out = []
    for lab, i in MINI_ROWS[split]:
        img = Image.open(io.BytesIO(files[mini_name(lab, i)]))
        if resize:
            img = img.resize((84, 84), BICUBIC)
        out.append(np.asarray(img.convert("RGB")).transpose(2, 0, 1))
    return np.stack(out).reshape(TINY_MINI[split], PER_CLASS, 3, 84, 84)


@pytest.fixture
def tiny_mini(monkeypatch, data_home) -> Path:
    monkeypatch.setattr(data, "MINIIMAGENET_SPLITS", dict(TINY_MINI))
    monkeypatch.setattr(data, "MINI_PER_CLASS", PER_CLASS)
    monkeypatch.setattr(
        data, "_mini_rows", lambda split: [(mini_name(lab, i), lab) for lab, i in MINI_ROWS[split]]
    )
    return data_home / "miniimagenet"


def write_mini_folder(base: Path, files: dict[str, bytes]) -> None:
    write_tree(base / "images", files)


def write_mini_tar(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        extra = {"miniimagenet/train.csv": b"filename,label\n"}
        members = {**extra, **{f"miniimagenet/images/{k}": v for k, v in files.items()}}
        for name, raw in reversed(members.items()):  # archive order != CSV order
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def assert_tiny_mini_loads(files, resize=False):
    for split, n in TINY_MINI.items():
        x = load_miniimagenet(split, resize=resize)
        assert x.dtype == torch.uint8 and x.shape == (n, PER_CLASS, 3, 84, 84)
        np.testing.assert_array_equal(x.numpy(), expected_mini(split, files, resize))


def test_mini_from_folder_csv_order(tiny_mini):
    files = mini_files()
    write_mini_folder(tiny_mini, files)
    assert_tiny_mini_loads(files)
    assert split_names("miniimagenet", "train") == ["n02000000", "n01000000"]
    meta = json.loads((tiny_mini / "train_84.json").read_text())
    assert meta["classes"] == ["n02000000", "n01000000"]
    # first image of the first class is n0200000000000003.jpg, as in the CSV
    first = np.asarray(Image.open(io.BytesIO(files["n0200000000000003.jpg"])).convert("RGB"))
    assert torch.equal(
        load_miniimagenet("train")[0, 0], torch.from_numpy(first.copy()).permute(2, 0, 1)
    )


def test_mini_from_mirror_tar_and_then_cache_only(tiny_mini, tmp_path, monkeypatch):
    files = mini_files()
    tar = write_mini_tar(tmp_path / "mirror" / "miniimagenet" / "miniimagenet.tar.gz", files)
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(tmp_path / "mirror"))
    assert_tiny_mini_loads(files)
    assert json.loads((tiny_mini / "val_84.json").read_text())["source"] == str(tar)
    tar.unlink()
    monkeypatch.delenv("FEWSHOT_DATA_MIRROR")

    def no_sources(base):
        raise AssertionError("sources touched although the cache exists")

    monkeypatch.setattr(data, "_mini_sources", no_sources)
    assert_tiny_mini_loads(files)


def test_mini_from_local_tar(tiny_mini):
    files = mini_files()
    write_mini_tar(tiny_mini / "miniimagenet.tar.gz", files)
    assert_tiny_mini_loads(files)


def test_mini_wrong_size_and_resize(tiny_mini):
    files = mini_files(size=(100, 90))
    write_mini_folder(tiny_mini, files)
    with pytest.raises(DataError, match=r"\.jpg is 100x90, expected 84x84\. Pass resize=True"):
        load_miniimagenet("train")
    assert not list(tiny_mini.glob("*.npy"))
    assert_tiny_mini_loads(files, resize=True)


def test_mini_image_listed_but_missing(tiny_mini):
    files = mini_files()
    del files["n0100000000000003.jpg"]
    write_mini_folder(tiny_mini, files)
    with pytest.raises(
        DataError,
        match=r"1 of the 12 images listed in the Ravi CSVs are missing, for example "
        r"\['n0100000000000003\.jpg'\] \(from train\.csv\)",
    ):
        load_miniimagenet("test")
    assert not list(tiny_mini.glob("*.npy"))


def test_mini_empty_folder_names_the_folder(tiny_mini):
    (tiny_mini / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=re.escape(f"{tiny_mini}: 12 of the 12 images")):
        load_miniimagenet("val")


def test_mini_corrupt_jpeg(tiny_mini):
    files = mini_files()
    files["n0300000000000002.jpg"] = b"\xff\xd8\xff garbage"
    write_mini_tar(tiny_mini / "miniimagenet.tar.gz", files)
    with pytest.raises(DataError, match=r"n0300000000000002\.jpg is not a readable image"):
        load_miniimagenet("val")


def test_mini_truncated_tar(tiny_mini):
    tar = write_mini_tar(tiny_mini / "miniimagenet.tar.gz", mini_files())
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size * 2 // 3])
    with pytest.raises(DataError, match=r"miniimagenet\.tar\.gz could not be read to the end"):
        load_miniimagenet("train")
    assert not list(tiny_mini.glob("*.npy"))


def test_mini_not_available_message(tiny_mini, tmp_path, monkeypatch):
    with pytest.raises(DataError, match="miniImageNet is not available") as err:
        load_miniimagenet("train")
    msg = str(err.value)
    assert f"{tiny_mini / 'images'}/*.jpg" in msg
    assert str(tiny_mini / "miniimagenet.tar.gz") in msg
    assert "FEWSHOT_DATA_MIRROR" in msg and "(now" not in msg
    mirror = tmp_path / "m"
    mirror.mkdir()
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(mirror))
    with pytest.raises(DataError, match=re.escape(f"(now {mirror}, which lacks it)")):
        load_miniimagenet("train")
    (mirror / "file").write_text("")
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(mirror / "file"))
    with pytest.raises(DataError, match="is not a folder"):
        load_miniimagenet("train")


def test_mini_bad_cache(tiny_mini):
    files = mini_files()
    write_mini_folder(tiny_mini, files)
    load_miniimagenet("val")
    np.save(tiny_mini / "val_84.npy", np.zeros((1, PER_CLASS, 3, 84, 83), np.uint8))
    with pytest.raises(DataError, match=re.escape("holds uint8[1, 3, 3, 84, 83], expected")):
        load_miniimagenet("val")
    (tiny_mini / "test_84.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(DataError, match=r"test_84\.npy is unreadable"):
        load_miniimagenet("test")
    np.testing.assert_array_equal(load_miniimagenet("train").numpy(), expected_mini("train", files))


def test_mini_crash_while_writing_cache_then_rebuild(tiny_mini, monkeypatch):
    files = mini_files()
    write_mini_folder(tiny_mini, files)
    real_save, calls = np.save, []

    def crash_on_second(file, array, *args, **kwargs):
        calls.append(array.shape)
        if len(calls) == 2:
            file.write(b"\x93NUMPY")
            raise KeyboardInterrupt
        return real_save(file, array, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(data.np, "save", crash_on_second)
        with pytest.raises(KeyboardInterrupt):
            load_miniimagenet("val")
    assert (tiny_mini / "train_84.npy").exists(), "splits written before the crash are complete"
    assert not (tiny_mini / "val_84.npy").exists() and not (tiny_mini / "test_84.npy").exists()
    assert not list(tiny_mini.glob("*.tmp"))
    assert_tiny_mini_loads(files)


# --------------------------------------------------------------------------- prepare / CLI


def test_prepare_and_cli_on_tiny_data(omniglot_mirror, tiny_mini, capsys):
    write_mini_folder(tiny_mini, mini_files())
    times = prepare()
    assert set(times) == {"omniglot", "miniimagenet"} and all(t >= 0 for t in times.values())
    assert main(["prepare"]) == 0
    assert re.search(
        r"data ready in .*: omniglot \d+\.\d s, miniimagenet \d+\.\d s", capsys.readouterr().out
    )


def test_cli_reports_errors(tiny_omniglot, capsys):
    assert main(["prepare", "--root", str(tiny_omniglot)]) == 1
    assert capsys.readouterr().out.startswith("error: Omniglot is not available")


# --------------------------------------------------------------------------- shipped splits


def test_shipped_omniglot_split_files():
    s = {k: split_names("omniglot", k) for k in ("train", "val", "test", "trainval")}
    assert {k: len(v) for k, v in s.items()} == {
        "train": 4112,
        "val": 688,
        "test": 1692,
        "trainval": 4800,
    }
    assert all(len(set(v)) == len(v) for v in s.values()), "no duplicates"
    assert set(s["trainval"]) == set(s["train"]) | set(s["val"])
    assert not set(s["train"]) & set(s["val"]) and not set(s["trainval"]) & set(s["test"])
    pattern = re.compile(r"[^/]+/character\d\d/rot(000|090|180|270)")
    assert all(pattern.fullmatch(n) for v in s.values() for n in v)
    # every character comes with its 4 rotations, all in the same split: no leakage
    chars = {}
    for k in ("train", "val", "test"):
        for n in s[k]:
            chars.setdefault(n.rsplit("/", 1)[0], []).append((k, n[-3:]))
    assert len(chars) == 1623
    assert all(sorted(r for _, r in v) == ["000", "090", "180", "270"] for v in chars.values())
    assert all(len({k for k, _ in v}) == 1 for v in chars.values())


def test_shipped_miniimagenet_split_files():
    names = {k: split_names("miniimagenet", k) for k in ("train", "val", "test")}
    assert {k: len(v) for k, v in names.items()} == {"train": 64, "val": 16, "test": 20}
    assert len(set().union(*names.values())) == 100, "classes disjoint across splits"
    all_files = []
    for k, classes in names.items():
        rows = data._mini_rows(k)
        # the decoder relies on 600 consecutive rows per class, classes in first-seen order
        assert [label for _, label in rows] == [c for c in classes for _ in range(600)]
        assert all(f == f"{label}{f[9:17]}.jpg" and len(f) == 21 for f, label in rows)
        all_files += [f for f, _ in rows]
    assert len(set(all_files)) == 60000


# --------------------------------------------------------------------------- real data


def test_real_omniglot_test(real_data_dir):
    x = load_omniglot("test", root=real_data_dir)
    assert x.shape == (1692, 20, 28, 28) and x.dtype == torch.uint8
    assert x.float().mean() < 64, "background dark, ink bright"
    assert x.max() == 255 and x.min() == 0
    # test.txt starts with one character at rot000, rot090, rot180, rot270
    assert split_names("omniglot", "test")[:2] == [
        "Gurmukhi/character42/rot000",
        "Gurmukhi/character42/rot090",
    ]
    assert torch.equal(x[1], torch.rot90(x[0], 1, dims=(1, 2)))


def test_real_miniimagenet_val(real_data_dir):
    x = load_miniimagenet("val", root=real_data_dir)
    assert x.shape == (16, 600, 3, 84, 84) and x.dtype == torch.uint8
    assert 40 < x[:, :10].float().mean() < 200, "natural images"


def test_real_prepare_cli(real_data_dir):
    env = {**os.environ, "FEWSHOT_DATA_DIR": str(real_data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "fewshot_utils.data", "prepare"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(
        rf"data ready in {re.escape(str(real_data_dir))}: omniglot \d+\.\d s, "
        r"miniimagenet \d+\.\d s",
        proc.stdout,
    )


# ----------------------------------------------------------------------------- subsets


def test_subset_values_limits_and_errors():
    x = torch.arange(4 * 5 * 2).reshape(4, 5, 2)
    assert torch.equal(data.subset(x, 2, 3), x[:2, :3])
    assert data.subset(x, None, None).data_ptr() == x.data_ptr()  # a view, nothing copied
    assert data.subset(x, 4, 5).shape == (4, 5, 2)  # exactly the data: allowed
    assert data.subset(x, None, 1).shape == (4, 1, 2)
    with pytest.raises(ValueError, match=r"classes=5 is outside the data: it has 4 classes"):
        data.subset(x, 5)
    with pytest.raises(ValueError, match=r"images=6 is outside the data: it has 5 images"):
        data.subset(x, 2, 6)
    with pytest.raises(ValueError, match="classes=0"):
        data.subset(x, 0)


def test_load_miniimagenet_subsets_one_call(tiny_mini, tmp_path, monkeypatch):
    files = mini_files()
    write_mini_tar(tmp_path / "mirror" / "miniimagenet" / "miniimagenet.tar.gz", files)
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(tmp_path / "mirror"))
    got = data.load_miniimagenet_subsets(test=(None, 2), train=(1, None))
    assert list(got) == ["test", "train"]  # the order asked for
    assert torch.equal(got["train"], load_miniimagenet("train")[:1])
    assert torch.equal(got["test"], load_miniimagenet("test")[:, :2])
    with pytest.raises(ValueError, match=r"images=4 is outside the data: it has 3 images"):
        data.load_miniimagenet_subsets(val=(None, 4))
    with pytest.raises(ValueError, match="unknown miniimagenet split 'valid'"):
        data.load_miniimagenet_subsets(valid=(None, None))
    with pytest.raises(ValueError, match="name at least one split"):
        data.load_miniimagenet_subsets()


def test_has_miniimagenet_agrees_with_load(tiny_mini, tmp_path, monkeypatch):
    """Chapters skip miniImageNet parts on has_miniimagenet(): False exactly when loading would
    stop with DataError, True for each source load_miniimagenet reads."""
    assert not data.has_miniimagenet()
    with pytest.raises(DataError):
        load_miniimagenet("train")
    assert "FEWSHOT_DATA_MIRROR" in data.MINIIMAGENET_MISSING
    files = mini_files()
    tar = write_mini_tar(tmp_path / "mirror" / "miniimagenet" / "miniimagenet.tar.gz", files)
    monkeypatch.setenv("FEWSHOT_DATA_MIRROR", str(tmp_path / "mirror"))
    assert data.has_miniimagenet()
    assert_tiny_mini_loads(files)  # writes the caches
    tar.unlink()
    monkeypatch.delenv("FEWSHOT_DATA_MIRROR")
    assert data.has_miniimagenet()  # the caches alone
    for split in TINY_MINI:
        (tiny_mini / f"{split}_84.npy").unlink()
    assert not data.has_miniimagenet()
    write_mini_folder(tiny_mini, files)
    assert data.has_miniimagenet()
