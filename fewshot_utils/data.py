"""Real data: Omniglot (Vinyals split) and miniImageNet (Ravi split) as uint8 tensors.

Where the data comes from, in the order tried:

1. the decoded cache in the data directory (``FEWSHOT_DATA_DIR``, default
   ``~/.cache/fewshot-book``): one ``.npy`` per split, memory-mapped, about a
   second to load;
2. an already extracted folder in the data directory
   (``omniglot/images_background/...``, ``miniimagenet/images/*.jpg``);
3. the archives in the data directory, then in the offline mirror
   (``FEWSHOT_DATA_MIRROR``, a folder laid out like ``omniglot/*.zip`` and
   ``miniimagenet/miniimagenet.tar.gz``), read in place, never extracted into
   the mirror;
4. Omniglot only: the official archives, downloaded with torchvision's
   download and MD5 utilities when online.

Every cache file is written to a temporary name and renamed, so an
interrupted decode never leaves a half-written cache behind.

Run ``python -m fewshot_utils.data prepare`` to decode everything once.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = [
    "DataError",
    "data_dir",
    "mirror_dir",
    "load_omniglot",
    "load_miniimagenet",
    "load_miniimagenet_subsets",
    "has_miniimagenet",
    "MINIIMAGENET_MISSING",
    "subset",
    "split_names",
    "OMNIGLOT_SPLITS",
    "MINIIMAGENET_SPLITS",
    "OMNIGLOT_ARCHIVES",
    "load_fc100",
    "fc100_superclasses",
    "FC100_SPLITS",
    "CIFAR100_URL",
]

OMNIGLOT_SPLITS = {"train": 4112, "val": 688, "test": 1692, "trainval": 4800}
MINIIMAGENET_SPLITS = {"train": 64, "val": 16, "test": 20}
OMNIGLOT_SIZE = 28
OMNIGLOT_RAW_SIZE = 105
OMNIGLOT_DRAWERS = 20
MINI_SIZE = 84
MINI_PER_CLASS = 600


@dataclass(frozen=True)
class _Archive:
    name: str
    url: str
    md5: str
    characters: int


OMNIGLOT_ARCHIVES = (
    _Archive(
        "images_background",
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_background.zip",
        "68d2efa1b9178cc56df9314c21c6e718",
        964,
    ),
    _Archive(
        "images_evaluation",
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_evaluation.zip",
        "6b91aef0f799c5bb55b94e3f2daec811",
        659,
    ),
)
"""The official Omniglot archives (Lake et al.), as torchvision downloads them."""

MINI_ARCHIVE = "miniimagenet.tar.gz"


class DataError(RuntimeError):
    """Data missing, incomplete or corrupt; the message says what to do."""


# --------------------------------------------------------------------------- paths


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """Where decoded caches (and downloads) live: ``root``, else ``FEWSHOT_DATA_DIR``,
    else ``~/.cache/fewshot-book``."""
    if root is None:
        root = os.environ.get("FEWSHOT_DATA_DIR") or Path.home() / ".cache" / "fewshot-book"
    return Path(root).expanduser()


def mirror_dir() -> Path | None:
    """The offline mirror folder named by ``FEWSHOT_DATA_MIRROR``, if set."""
    m = os.environ.get("FEWSHOT_DATA_MIRROR")
    if not m:
        return None
    path = Path(m).expanduser()
    if not path.is_dir():
        raise DataError(
            f"FEWSHOT_DATA_MIRROR={m!r} is not a folder. Point it at a folder laid out like "
            "omniglot/images_background.zip, omniglot/images_evaluation.zip, "
            "miniimagenet/miniimagenet.tar.gz, or unset it."
        )
    return path


def split_names(dataset: str, split: str) -> list[str]:
    """Class names of a split from the files shipped in ``fewshot_utils/splits``.

    Omniglot: ``Alphabet/characterNN/rotDDD``; miniImageNet: WordNet ids in
    the order they first appear in the Ravi CSV.
    """
    if dataset == "omniglot":
        _check_split(split, OMNIGLOT_SPLITS, "omniglot")
        text = _split_file("omniglot_vinyals", f"{split}.txt")
        return [line.strip() for line in text.splitlines() if line.strip()]
    if dataset == "miniimagenet":
        _check_split(split, MINIIMAGENET_SPLITS, "miniimagenet")
        return list(dict.fromkeys(label for _, label in _mini_rows(split)))
    raise ValueError(f"unknown dataset {dataset!r}; choose 'omniglot' or 'miniimagenet'")


def _split_file(folder: str, name: str) -> str:
    return resources.files("fewshot_utils").joinpath("splits", folder, name).read_text()


def _check_split(split: str, splits: dict[str, int], dataset: str) -> None:
    if split not in splits:
        raise ValueError(f"unknown {dataset} split {split!r}; choose one of {list(splits)}")


def _mini_rows(split: str) -> list[tuple[str, str]]:
    rows = list(csv.reader(io.StringIO(_split_file("miniimagenet_ravi", f"{split}.csv"))))
    return [(f, label) for f, label in rows[1:]]


# --------------------------------------------------------------------------- cache


def _save_atomic(path: Path, array: np.ndarray, meta: dict) -> None:
    """Write ``array`` as ``path`` (.npy) and ``meta`` beside it, via temporary files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    meta_path = path.with_suffix(".json")
    tmp_meta = meta_path.with_name(meta_path.name + f".{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        tmp_meta.write_text(json.dumps(meta, indent=1))
        os.replace(tmp_meta, meta_path)
        os.replace(tmp, path)  # the array last: its presence means the cache is complete
    except BaseException:  # never leave a (possibly huge) half-written temporary behind
        tmp.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
        raise


def _load_cache(path: Path, shape: tuple[int, ...]) -> torch.Tensor | None:
    if not path.exists():
        return None
    try:
        array = np.load(path)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"cache file {path} is unreadable ({e}); delete it and load again") from e
    if array.shape != shape or array.dtype != np.uint8:
        raise DataError(
            f"cache file {path} holds {array.dtype}{list(array.shape)}, expected "
            f"uint8{list(shape)}; delete it and load again to rebuild it"
        )
    return torch.from_numpy(array)


# --------------------------------------------------------------------------- omniglot


def load_omniglot(split: str = "train", root: str | os.PathLike | None = None) -> torch.Tensor:
    """Omniglot ``split`` of the Vinyals split as uint8 ``[classes, 20, 28, 28]``.

    Each class is one character at one rotation (0/90/180/270 degrees, in the
    order of the split file); images are resized from 105x105 with an
    antialiasing filter and inverted so that ink is bright (255) on black.
    """
    _check_split(split, OMNIGLOT_SPLITS, "omniglot")
    names = split_names("omniglot", split)
    chars, index = _omniglot_characters(root)
    rows, rots = [], []
    for name in names:
        alphabet, character, rot = name.split("/")
        key = f"{alphabet}/{character}"
        if key not in index:
            raise DataError(f"split class {name!r} is not among the decoded Omniglot characters")
        rows.append(index[key])
        rots.append(int(rot[3:]) // 90)
    rows_t, rots_t = torch.tensor(rows), torch.tensor(rots)
    out = chars[rows_t]
    for k in (1, 2, 3):
        sel = rots_t == k
        out[sel] = torch.rot90(out[sel], k, dims=(-2, -1))
    return out


def _omniglot_characters(root) -> tuple[torch.Tensor, dict[str, int]]:
    """All 1623 characters, unrotated, ``[1623, 20, 28, 28]``, and name -> row."""
    base = data_dir(root) / "omniglot"
    cache = base / f"omniglot_{OMNIGLOT_SIZE}.npy"
    total = sum(a.characters for a in OMNIGLOT_ARCHIVES)
    shape = (total, OMNIGLOT_DRAWERS, OMNIGLOT_SIZE, OMNIGLOT_SIZE)
    data = _load_cache(cache, shape)
    if data is not None:
        meta = cache.with_suffix(".json")
        try:
            names = json.loads(meta.read_text())["characters"]
            if len(names) != total:
                raise ValueError(f"{len(names)} names for {total} characters")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(
                f"cache metadata {meta} is missing or corrupt ({type(e).__name__}: {e}); "
                f"delete {cache} and load again to rebuild it"
            ) from e
        return data, {n: i for i, n in enumerate(names)}
    arrays, names = [], []
    for archive in OMNIGLOT_ARCHIVES:
        a, n = _decode_omniglot_archive(archive, base)
        arrays.append(a)
        names += n
    array = np.concatenate(arrays)
    _save_atomic(cache, array, {"characters": names, "size": OMNIGLOT_SIZE, "inverted": True})
    return torch.from_numpy(array), {n: i for i, n in enumerate(names)}


def _decode_omniglot_archive(archive: _Archive, base: Path) -> tuple[np.ndarray, list[str]]:
    folder = base / archive.name
    if folder.is_dir():
        files = {str(p.relative_to(base)): p for p in folder.rglob("*.png")}
        return _decode_omniglot_files(archive, files, lambda p: p.read_bytes(), str(folder))
    zpath = _find_omniglot_zip(archive, base)
    try:
        with zipfile.ZipFile(zpath) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DataError(
                    f"{zpath}: member {bad} fails its CRC check; the archive is corrupt"
                )
            members = {i.filename: i for i in zf.infolist() if i.filename.endswith(".png")}
            return _decode_omniglot_files(archive, members, zf.read, str(zpath))
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, zlib.error) as e:
        raise DataError(
            f"{zpath} is not a readable zip archive ({e}); it is probably truncated. Delete it "
            f"and fetch it again from {archive.url}"
        ) from e


def _decode_omniglot_files(archive: _Archive, files: dict, read, where: str):
    """Decode ``{relative path: handle}`` into ``[characters, 20, 28, 28]``."""
    by_char: dict[str, list[str]] = {}
    for path in files:
        parts = path.replace("\\", "/").split("/")
        if len(parts) < 4 or parts[-4] != archive.name:
            continue
        by_char.setdefault(f"{parts[-3]}/{parts[-2]}", []).append(path)
    if len(by_char) != archive.characters:
        raise DataError(
            f"{where}: found {len(by_char)} characters, expected {archive.characters} "
            f"(layout {archive.name}/<Alphabet>/<characterNN>/<id>_<drawer>.png). The archive is "
            f"incomplete; fetch it again from {archive.url}"
        )
    names = sorted(by_char)
    out = np.empty((len(names), OMNIGLOT_DRAWERS, OMNIGLOT_SIZE, OMNIGLOT_SIZE), np.uint8)
    for i, name in enumerate(_progress(names, f"decoding {archive.name}")):
        paths = sorted(by_char[name])
        if len(paths) != OMNIGLOT_DRAWERS:
            raise DataError(
                f"{where}: character {name} has {len(paths)} images, expected {OMNIGLOT_DRAWERS}"
            )
        for j, p in enumerate(paths):
            out[i, j] = _omniglot_image(read(files[p]), f"{where}:{p}")
    return out, names


def _open_image(raw: bytes, where: str) -> Image.Image:
    """The decoded image of ``raw`` (from ``where``), or a DataError that names it."""
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
    except Exception as e:  # PIL raises many types for bad bytes
        raise DataError(f"{where} is not a readable image ({e})") from e
    return img


def _omniglot_image(raw: bytes, where: str) -> np.ndarray:
    img = _open_image(raw, where)
    if img.size != (OMNIGLOT_RAW_SIZE, OMNIGLOT_RAW_SIZE):
        raise DataError(
            f"{where} is {img.size[0]}x{img.size[1]}, expected "
            f"{OMNIGLOT_RAW_SIZE}x{OMNIGLOT_RAW_SIZE} (an original Omniglot image)"
        )
    small = img.convert("L").resize((OMNIGLOT_SIZE, OMNIGLOT_SIZE), Image.Resampling.LANCZOS)
    return 255 - np.asarray(small, dtype=np.uint8)


def _find_omniglot_zip(archive: _Archive, base: Path) -> Path:
    local = base / f"{archive.name}.zip"
    if local.exists():
        return local
    mirror = mirror_dir()
    if mirror is not None and (mirror / "omniglot" / f"{archive.name}.zip").exists():
        return mirror / "omniglot" / f"{archive.name}.zip"
    try:
        return _download(archive, base)
    except DataError:
        raise
    except (OSError, RuntimeError) as e:
        raise DataError(_omniglot_missing_message(base, mirror, e)) from e


def _download(archive: _Archive, base: Path) -> Path:
    from torchvision.datasets.utils import check_integrity, download_url

    base.mkdir(parents=True, exist_ok=True)
    tmp_name = f"{archive.name}.zip.part"
    try:
        # no md5= here: download_url would raise a bare RuntimeError on a mismatch
        download_url(archive.url, str(base), filename=tmp_name)
        ok = check_integrity(str(base / tmp_name), archive.md5)
    except BaseException:
        (base / tmp_name).unlink(missing_ok=True)
        raise
    if not ok:
        (base / tmp_name).unlink(missing_ok=True)
        raise DataError(
            f"downloaded {archive.url} but its MD5 is not {archive.md5}; the download was "
            "corrupted or the file changed upstream. Try again, or use a local mirror."
        )
    os.replace(base / tmp_name, base / f"{archive.name}.zip")
    return base / f"{archive.name}.zip"


def _omniglot_missing_message(base: Path, mirror: Path | None, cause: Exception) -> str:
    lines = [
        f"Omniglot is not available and could not be downloaded ({type(cause).__name__}: {cause}).",
        "Expected these files (any one way is enough):",
        *[f"  {base / (a.name + '.zip')}  <- {a.url} (md5 {a.md5})" for a in OMNIGLOT_ARCHIVES],
        f"  or the extracted folders {base / 'images_background'} and {base / 'images_evaluation'}",
        "  or an offline mirror: set FEWSHOT_DATA_MIRROR to a folder holding "
        "omniglot/images_background.zip and omniglot/images_evaluation.zip"
        + (f" (now {mirror}, which lacks them)" if mirror else ""),
        "The data directory is FEWSHOT_DATA_DIR (or the root= argument).",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- miniimagenet


def load_miniimagenet(
    split: str = "train", root: str | os.PathLike | None = None, resize: bool = False
) -> torch.Tensor:
    """miniImageNet ``split`` of the Ravi split as uint8 ``[classes, 600, 3, 84, 84]``.

    Classes are in the order of the Ravi CSV shipped with the package; images
    of a class in CSV order. Reads the standard layout
    ``<data dir>/miniimagenet/images/*.jpg`` or the archive
    ``miniimagenet.tar.gz`` (data directory first, then the mirror). The first
    call decodes all three splits in one pass over the archive and caches them.
    Images must be 84x84 unless ``resize=True`` (bicubic, as Ravi's script).
    """
    _check_split(split, MINIIMAGENET_SPLITS, "miniimagenet")
    shape = (MINIIMAGENET_SPLITS[split], MINI_PER_CLASS, 3, MINI_SIZE, MINI_SIZE)
    base = data_dir(root) / "miniimagenet"
    cache = base / f"{split}_{MINI_SIZE}.npy"
    data = _load_cache(cache, shape)
    if data is not None:
        return data
    _decode_miniimagenet(base, resize)
    data = _load_cache(cache, shape)
    assert data is not None
    return data


MINIIMAGENET_MISSING = (
    "miniImageNet is not available, so this part is skipped: put miniimagenet.tar.gz in "
    "<data dir>/miniimagenet/ or in $FEWSHOT_DATA_MIRROR/miniimagenet/ (chapter 4 says where "
    "to get it) and run the chapter again."
)


def has_miniimagenet(root: str | os.PathLike | None = None) -> bool:
    """True when :func:`load_miniimagenet` can load every split without downloading: their
    caches, the extracted images or the archive are in the data directory, or the archive is
    in the mirror. Chapters that use miniImageNet only for an illustration skip it otherwise,
    printing :data:`MINIIMAGENET_MISSING`, so that a fresh runtime with only Omniglot (which
    downloads itself) runs them."""
    base = data_dir(root) / "miniimagenet"
    if all((base / f"{s}_{MINI_SIZE}.npy").exists() for s in MINIIMAGENET_SPLITS):
        return True
    if (base / "images").is_dir() or (base / MINI_ARCHIVE).exists():
        return True
    mirror = mirror_dir()
    return mirror is not None and (mirror / "miniimagenet" / MINI_ARCHIVE).exists()


def subset(x: torch.Tensor, classes: int | None = None, images: int | None = None) -> torch.Tensor:
    """The first ``classes`` classes and first ``images`` images per class of a
    ``[classes, images, ...]`` split (``None``: all), as a view.

    The profiles shrink the data this way (``smoke`` uses a few classes). A limit beyond the
    data raises ``ValueError``: plain slicing would silently give fewer than asked for.
    """
    for name, limit, have in (("classes", classes, x.shape[0]), ("images", images, x.shape[1])):
        if limit is not None and not 1 <= limit <= have:
            raise ValueError(
                f"{name}={limit} is outside the data: it has {have} {name} (1..{have})"
            )
    return x[:classes, :images]


def load_miniimagenet_subsets(
    root: str | os.PathLike | None = None, **limits: tuple[int | None, int | None]
) -> dict[str, torch.Tensor]:
    """miniImageNet splits cut to their profile's size in one call:
    ``load_miniimagenet_subsets(train=(8, 40), test=(None, 100))`` is
    ``{"train": subset(load_miniimagenet("train"), 8, 40), "test": ...}``, in the order
    given. Each value is a ``(classes, images per class)`` pair for :func:`subset`."""
    if not limits:
        raise ValueError("name at least one split, e.g. train=(None, None) for all of it")
    return {
        split: subset(load_miniimagenet(split, root), classes, images)
        for split, (classes, images) in limits.items()
    }


def _decode_miniimagenet(base: Path, resize: bool) -> None:
    wanted = {}
    for split in MINIIMAGENET_SPLITS:
        for i, (fname, _) in enumerate(_mini_rows(split)):
            wanted[fname] = (split, i)
    arrays = {
        s: np.empty((n * MINI_PER_CLASS, 3, MINI_SIZE, MINI_SIZE), np.uint8)
        for s, n in MINIIMAGENET_SPLITS.items()
    }
    seen: set[str] = set()
    source: str | Path = base  # named in the error if no image was found at all
    for where, fname, raw in _mini_sources(base):
        source = where
        if fname not in wanted or fname in seen:
            continue
        split, i = wanted[fname]
        arrays[split][i] = _mini_image(raw, f"{where}:{fname}", resize)
        seen.add(fname)
    missing = [f for f in wanted if f not in seen]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} of the {len(wanted)} images listed in the Ravi CSVs are "
            f"missing, for example {missing[:3]} (from {wanted[missing[0]][0]}.csv). The folder "
            "or archive is incomplete; fetch miniImageNet again."
        )
    for split, n in MINIIMAGENET_SPLITS.items():
        array = arrays[split].reshape(n, MINI_PER_CLASS, 3, MINI_SIZE, MINI_SIZE)
        meta = {"classes": split_names("miniimagenet", split), "source": str(source)}
        _save_atomic(base / f"{split}_{MINI_SIZE}.npy", array, meta)


def _mini_sources(base: Path) -> Iterator[tuple[str, str, bytes]]:
    """Yield ``(where, file name, JPEG bytes)`` from the first source found."""
    folder = base / "images"
    if folder.is_dir():
        files = sorted(folder.glob("*.jpg"))
        for p in _progress(files, "decoding miniImageNet"):
            yield str(folder), p.name, p.read_bytes()
        return
    archive = _find_mini_archive(base)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            bar = _progress(None, "decoding miniImageNet", total=60000)
            for member in tar:
                if (
                    member.isfile()
                    and member.name.endswith(".jpg")
                    and "/images/" in ("/" + member.name)
                ):
                    f = tar.extractfile(member)
                    assert f is not None
                    yield str(archive), Path(member.name).name, f.read()
                    bar.update()
            bar.close()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(
            f"{archive} could not be read to the end ({type(e).__name__}: {e}); it is probably "
            "truncated or corrupt. Fetch it again."
        ) from e


def _find_mini_archive(base: Path) -> Path:
    candidates = [base / MINI_ARCHIVE]
    mirror = mirror_dir()
    if mirror is not None:
        candidates.append(mirror / "miniimagenet" / MINI_ARCHIVE)
    for c in candidates:
        if c.exists():
            return c
    raise DataError(
        "miniImageNet is not available (it has no official direct download).\n"
        "Expected one of:\n"
        f"  {base / 'images'}/*.jpg  (60,000 84x84 JPEGs named as in the Ravi & Larochelle "
        "CSVs, e.g. n0153282900000005.jpg)\n"
        f"  {base / MINI_ARCHIVE}  (a .tar.gz holding miniimagenet/images/*.jpg)\n"
        "  or an offline mirror: FEWSHOT_DATA_MIRROR pointing at a folder with "
        f"miniimagenet/{MINI_ARCHIVE}"
        + (f" (now {mirror}, which lacks it)" if mirror else "")
        + "\nSource: the miniImageNet release of Ravi & Larochelle (2017), built from "
        "ILSVRC-2012 images; see the book's chapter 4 for where to get it."
    )


def _mini_image(raw: bytes, where: str, resize: bool) -> np.ndarray:
    img = _open_image(raw, where)
    if img.size != (MINI_SIZE, MINI_SIZE):
        if not resize:
            raise DataError(
                f"{where} is {img.size[0]}x{img.size[1]}, expected {MINI_SIZE}x{MINI_SIZE}. "
                "Pass resize=True (or `prepare --resize`) to resize the originals, or use "
                "the pre-resized miniImageNet release."
            )
        img = img.resize((MINI_SIZE, MINI_SIZE), Image.Resampling.BICUBIC)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)


# --------------------------------------------------------------------------- fc100

FC100_SPLITS = {"train": 12, "val": 4, "test": 4}  # superclasses; 5 CIFAR classes each
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_ARCHIVE = "cifar-100-python.tar.gz"


def fc100_superclasses(split: str) -> list[str]:
    """CIFAR-100 superclass names of an FC100 split (Oreshkin et al.), from the package."""
    _check_split(split, FC100_SPLITS, "fc100")
    names = json.loads(_split_file("fc100", f"{split}.json"))
    if len(names) != FC100_SPLITS[split]:
        raise DataError(
            f"fc100/{split}.json lists {len(names)} superclasses, expected "
            f"{FC100_SPLITS[split]}; reinstall fewshot_utils"
        )
    return names


def load_fc100(split: str = "train", root: str | os.PathLike | None = None) -> torch.Tensor:
    """FC100 ``split`` as uint8 ``[classes, per_class, 3, 32, 32]``: the CIFAR-100 classes of
    the split's superclasses (60 / 20 / 20), in CIFAR fine-label order, each with its training
    then test images (600 per class for the real CIFAR-100).

    Reads ``<data dir>/cifar100/cifar-100-python/{train,test,meta}`` or the archive
    ``cifar-100-python.tar.gz`` (data directory ``cifar100/``, then the mirror's
    ``cifar100/``); when online, downloads the archive with torchvision's downloader (MD5
    checked). The first call decodes all three splits and caches them atomically.
    """
    _check_split(split, FC100_SPLITS, "fc100")
    base = data_dir(root) / "cifar100"
    cache = base / f"fc100_{split}_32.npy"
    if not cache.exists():
        _decode_fc100(base)
    try:
        array = np.load(cache)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"cache file {cache} is unreadable ({e}); delete it and load again") from e
    n = 5 * FC100_SPLITS[split]
    ok = array.dtype == np.uint8 and array.ndim == 5 and array.shape[0] == n
    if not ok or array.shape[2:] != (3, 32, 32):
        raise DataError(
            f"cache file {cache} holds {array.dtype}{list(array.shape)}, expected "
            f"uint8[{n}, per_class, 3, 32, 32]; delete it and load again"
        )
    return torch.from_numpy(array)


def _decode_fc100(base: Path) -> None:
    parts = _cifar100_parts(base)
    try:
        meta = parts["meta"]
        coarse_names = list(meta["coarse_label_names"])
        fine_names = list(meta["fine_label_names"])
        images = np.concatenate(
            [
                np.asarray(parts[p]["data"], np.uint8).reshape(-1, 3, 32, 32)
                for p in ("train", "test")
            ]
        )
        fine = np.concatenate([np.asarray(parts[p]["fine_labels"]) for p in ("train", "test")])
        coarse = np.concatenate([np.asarray(parts[p]["coarse_labels"]) for p in ("train", "test")])
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(
            f"CIFAR-100 files in {base} are not in the CIFAR python format ({e}); "
            f"delete them and download {CIFAR100_URL} again"
        ) from e
    fine_to_coarse = {}
    for f, c in zip(fine.tolist(), coarse.tolist()):
        fine_to_coarse.setdefault(f, c)
    counts = np.bincount(fine, minlength=len(fine_names))
    if len(set(counts.tolist())) != 1:
        raise DataError(
            f"CIFAR-100 in {base} has unequal images per class ({counts.min()}-"
            f"{counts.max()}); the files are incomplete: download them again"
        )
    for split in FC100_SPLITS:
        wanted = fc100_superclasses(split)
        missing = [w for w in wanted if w not in coarse_names]
        if missing:
            raise DataError(f"CIFAR-100 meta in {base} lacks the superclasses {missing}")
        ids = {coarse_names.index(w) for w in wanted}
        classes = sorted(f for f, c in fine_to_coarse.items() if c in ids)
        if len(classes) != 5 * len(wanted):
            raise DataError(
                f"FC100 {split}: found {len(classes)} CIFAR classes in superclasses "
                f"{wanted}, expected {5 * len(wanted)}"
            )
        array = np.stack([images[fine == f] for f in classes])
        _save_atomic(
            base / f"fc100_{split}_32.npy",
            array,
            {"classes": [fine_names[f] for f in classes], "superclasses": wanted},
        )


def _cifar100_parts(base: Path) -> dict:
    """The unpickled ``train``, ``test`` and ``meta`` of CIFAR-100 (python version), from the
    extracted folder, the archive in the data directory or mirror, or a download."""
    import pickle

    folder = base / "cifar-100-python"
    if all((folder / p).exists() for p in ("train", "test", "meta")):
        out = {}
        for p in ("train", "test", "meta"):
            with open(folder / p, "rb") as f:
                out[p] = _unpickle(pickle, f.read(), folder / p)
        return out
    mirror = mirror_dir()
    candidates = [base / CIFAR100_ARCHIVE]
    if mirror is not None:
        candidates.append(mirror / "cifar100" / CIFAR100_ARCHIVE)
    archive = next((c for c in candidates if c.exists()), None)
    if archive is None:
        try:
            from torchvision.datasets.utils import download_url

            base.mkdir(parents=True, exist_ok=True)
            download_url(CIFAR100_URL, str(base), filename=CIFAR100_ARCHIVE, md5=CIFAR100_MD5)
            archive = base / CIFAR100_ARCHIVE
        except (OSError, RuntimeError) as e:
            raise DataError(
                f"CIFAR-100 (for FC100) is not available and could not be downloaded "
                f"({type(e).__name__}: {e}). Expected any one of:\n"
                f"  {folder}/{{train,test,meta}} (the extracted python version)\n"
                f"  {base / CIFAR100_ARCHIVE}  <- {CIFAR100_URL} (md5 {CIFAR100_MD5})\n"
                "  an offline mirror: FEWSHOT_DATA_MIRROR pointing at a folder holding "
                f"cifar100/{CIFAR100_ARCHIVE}"
                + (f" (now {mirror}, which lacks it)" if mirror else "")
            ) from e
    out = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in ("train", "test", "meta"):
                    out[name] = _unpickle(pickle, tar.extractfile(member).read(), archive)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{archive} is truncated or not a tar.gz ({e}); delete it and download "
            f"{CIFAR100_URL} again"
        ) from e
    if set(out) != {"train", "test", "meta"}:
        raise DataError(
            f"{archive} lacks cifar-100-python/{{train,test,meta}} (found "
            f"{sorted(out)}); it is not the CIFAR-100 python archive"
        )
    return out


def _unpickle(pickle, raw: bytes, where) -> dict:
    try:
        return pickle.loads(raw, encoding="latin1")
    except Exception as e:  # pickle raises many kinds on corrupt data
        raise DataError(f"{where} is not a readable CIFAR pickle ({e}); download it again") from e


# --------------------------------------------------------------------------- helpers


def _progress(items: Iterable | None, desc: str, total: int | None = None):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total, leave=False, mininterval=1.0)


def prepare(root: str | os.PathLike | None = None, resize: bool = False) -> dict[str, float]:
    """Decode and cache every split of both datasets; returns seconds per dataset."""
    times = {}
    t = time.perf_counter()
    for split in OMNIGLOT_SPLITS:
        load_omniglot(split, root)
    times["omniglot"] = time.perf_counter() - t
    t = time.perf_counter()
    for split in MINIIMAGENET_SPLITS:
        load_miniimagenet(split, root, resize=resize)
    times["miniimagenet"] = time.perf_counter() - t
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fewshot_utils.data")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="decode Omniglot and miniImageNet into the cache")
    p.add_argument("--root", default=None, help="data directory (default FEWSHOT_DATA_DIR)")
    p.add_argument("--resize", action="store_true", help="resize miniImageNet images to 84x84")
    args = parser.parse_args(argv)
    try:
        times = prepare(args.root, args.resize)
    except DataError as e:
        print(f"error: {e}")
        return 1
    print(
        f"data ready in {data_dir(args.root)}: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
