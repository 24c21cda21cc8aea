"""Tests of core.data: the registry, the real download path (against a local HTTP server
serving generated files), the Debian Fashion-MNIST copy, IDX folders and ImageData."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import pickle
import socket
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from core import data
from core.data import DatasetError, ImageData

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FMNIST_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- helpers


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: (N, H, W) images (magic 2051) or (N,) labels (2049)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def fake_split(n: int, seed: int, shape=(28, 28), label_values=range(10)):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    labels = rng.choice(np.asarray(list(label_values), dtype=np.uint8), size=n)
    return images, labels


def write_idx_folder(folder: Path, splits: dict, gz: bool = True) -> dict[str, str]:
    """Write the four IDX files (gzipped or not); returns file name -> md5."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for split, (images, labels) in splits.items():
        for stem, array in zip(IDX_NAMES[split], (images, labels), strict=True):
            if gz:
                path = folder / f"{stem}.gz"
                path.write_bytes(gzip.compress(idx_bytes(array)))
            else:
                path = folder / stem
                path.write_bytes(idx_bytes(array))
            sums[path.name] = md5(path)
    return sums


def free_closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("LATENTLAB_MIRROR", "LATENTLAB_DATA_DIR", "LATENTLAB_FMNIST_SYSTEM_DIR"):
        monkeypatch.delenv(var, raising=False)
    data.clear_cache()
    yield
    data.clear_cache()


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on 127.0.0.1 over a fresh folder: yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def fake_mnist():
    return {"train": fake_split(64, seed=1), "test": fake_split(32, seed=2)}


def assert_matches(loaded: ImageData, images: np.ndarray, labels: np.ndarray) -> None:
    assert loaded.images.dtype == torch.float32 and loaded.labels.dtype == torch.int64
    assert loaded.images.is_contiguous()
    assert tuple(loaded.images.shape) == (len(images), 1, *images.shape[1:])
    back = (loaded.images[:, 0] * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(back, images)
    np.testing.assert_array_equal(loaded.labels.numpy(), labels.astype(np.int64))


# ----------------------------------------------------------------------------- registry


def test_unknown_dataset_and_split():
    with pytest.raises(DatasetError, match=r"Unknown dataset 'foo': choose one of mnist"):
        data.load("foo")
    with pytest.raises(DatasetError, match="idx:<folder>"):
        data.class_names("foo")
    with pytest.raises(DatasetError, match="Unknown split 'val'"):
        data.load("digits", "val")


def test_registry_shapes_and_names():
    assert data.DATASET_NAMES == ["mnist", "fashion-mnist", "kmnist", "cifar10", "digits"]
    assert data.image_shape("mnist") == (1, 28, 28)
    assert data.image_shape("fashion-mnist") == (1, 28, 28)
    assert data.image_shape("kmnist") == (1, 28, 28)
    assert data.image_shape("cifar10") == (3, 32, 32)
    assert data.image_shape("digits") == (1, 8, 8)
    assert data.class_names("fashion-mnist")[0] == "T-shirt/top"
    assert data.class_names("kmnist")[:3] == ["o", "ki", "su"]
    assert data.class_names("cifar10")[0] == "airplane"
    for name in data.DATASET_NAMES:
        assert len(data.class_names(name)) == 10


def test_default_data_dir(monkeypatch, tmp_path):
    assert data.default_data_dir() == Path("data")
    monkeypatch.setenv("LATENTLAB_DATA_DIR", str(tmp_path))
    assert data.default_data_dir() == tmp_path


# ----------------------------------------------------------------------------- digits


def test_digits_splits():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert (len(train), len(test)) == (1437, 360)
    for split in (train, test):
        assert split.image_shape == (1, 8, 8)
        assert split.images.dtype == torch.float32 and split.labels.dtype == torch.int64
        assert split.images.is_contiguous()
        assert float(split.images.min()) >= 0.0 and float(split.images.max()) <= 1.0
        assert split.class_names == [str(d) for d in range(10)]
        assert split.num_classes == 10
    assert float(train.images.max()) == 1.0
    # The split is every 5th image as test: together they are the 1797 images, disjoint.
    from sklearn.datasets import load_digits

    pixels, targets = load_digits(return_X_y=True)
    test_index = np.arange(len(targets)) % 5 == 0
    np.testing.assert_allclose(test.images.reshape(-1, 64).numpy() * 16, pixels[test_index])
    np.testing.assert_allclose(train.images.reshape(-1, 64).numpy() * 16, pixels[~test_index])
    np.testing.assert_array_equal(test.labels.numpy(), targets[test_index])
    assert set(train.labels.tolist()) == set(range(10))


def test_load_is_cached():
    first = data.load("digits")
    assert data.load("digits") is first
    data.clear_cache()
    assert data.load("digits") is not first


# ----------------------------------------------------------------------------- ImageData


def test_subset_is_deterministic():
    train = data.load("digits")
    a, b, c = train.subset(100, seed=3), train.subset(100, seed=3), train.subset(100, seed=4)
    assert len(a) == 100 and a.image_shape == (1, 8, 8)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    assert a.class_names == train.class_names and a.split == "train"
    assert train.subset(10_000) is train
    with pytest.raises(ValueError):
        train.subset(-1)


def test_head_is_the_first_items():
    train = data.load("digits")
    h = train.head(100)
    assert torch.equal(h.images, train.images[:100]) and torch.equal(h.labels, train.labels[:100])
    assert h.class_names == train.class_names and h.split == "train"
    assert train.head(10_000) is train
    with pytest.raises(ValueError):
        train.head(-1)


def test_describe_is_json():
    described = data.load("digits", "test").describe()
    assert json.loads(json.dumps(described)) == {
        "name": "digits",
        "image_shape": [1, 8, 8],
        "class_names": [str(d) for d in range(10)],
    }


def test_imagedata_validates():
    with pytest.raises(ValueError, match="float32"):
        ImageData("x", "train", torch.zeros(2, 8, 8), torch.zeros(2, dtype=torch.int64), ["a"])
    with pytest.raises(ValueError, match="labels"):
        ImageData("x", "train", torch.zeros(2, 1, 8, 8), torch.zeros(3, dtype=torch.int64), ["a"])


# ----------------------------------------------------------------------------- MNIST family


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("kmnist", "KMNIST")])
def test_download_from_mirror(server, tmp_path, fake_mnist, name, folder):
    served, url = server
    sums = write_idx_folder(served, fake_mnist)
    data_dir = tmp_path / "data"
    train = data.load(name, "train", data_dir, mirror=url, checksums=sums)
    test = data.load(name, "test", data_dir, mirror=url, checksums=sums)
    assert_matches(train, *fake_mnist["train"])
    assert_matches(test, *fake_mnist["test"])
    assert train.name == name and train.class_names == data.class_names(name)
    assert (data_dir / folder / "raw" / "train-images-idx3-ubyte").is_file()
    # Once on disk, no network and no checksums are needed.
    data.clear_cache()
    again = data.load(name, "test", data_dir, download=False)
    assert torch.equal(again.images, test.images)


def test_mirror_from_env_with_name(server, tmp_path, fake_mnist, monkeypatch):
    served, url = server
    sums = write_idx_folder(served / "kmnist", fake_mnist)
    monkeypatch.setenv("LATENTLAB_MIRROR", url + "{name}/")
    monkeypatch.setenv("LATENTLAB_DATA_DIR", str(tmp_path / "data"))
    assert_matches(data.load("kmnist", "test", checksums=sums), *fake_mnist["test"])


def test_wrong_checksum_names_the_file(server, tmp_path, fake_mnist):
    served, url = server
    sums = write_idx_folder(served, fake_mnist)
    sums["train-images-idx3-ubyte.gz"] = "0" * 32
    with pytest.raises(DatasetError, match=r"Checksum mismatch for train-images-idx3-ubyte\.gz"):
        data.load("mnist", "train", tmp_path / "data", mirror=url, checksums=sums)
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert not any(p.name.startswith("train-images") for p in raw.iterdir())


def test_official_checksums_reject_other_files(server, tmp_path, fake_mnist):
    served, url = server
    write_idx_folder(served, fake_mnist)
    with pytest.raises(DatasetError, match="expected md5 f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        data.load("mnist", "train", tmp_path / "data", mirror=url)


def test_unknown_checksum_file(tmp_path):
    with pytest.raises(DatasetError, match="not a file of MNIST"):
        data.load("mnist", data_dir=tmp_path, checksums={"train.gz": "0" * 32})


def test_unreachable_mirror_says_how_to_fix(tmp_path):
    mirror = f"http://127.0.0.1:{free_closed_port()}/"
    with pytest.raises(DatasetError) as info:
        data.load("mnist", "train", tmp_path, mirror=mirror)
    message = str(info.value)
    assert message.startswith("MNIST is not in ") and "could not be downloaded" in message
    assert "put the four IDX files in that folder" in message and "--data-dir" in message
    assert "\n" not in message


def test_download_off_with_nothing_on_disk(tmp_path):
    with pytest.raises(DatasetError, match="downloads are turned off"):
        data.load("kmnist", "test", tmp_path, download=False)


def test_corrupt_files_on_disk(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in (*IDX_NAMES["train"], *IDX_NAMES["test"]):
        (raw / stem).write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DatasetError, match="Could not read MNIST"):
        data.load("mnist", "train", tmp_path, download=False)


# ----------------------------------------------------------------------------- CIFAR-10

CIFAR_CLASSES = data.class_names("cifar10")


def write_cifar_tarball(folder: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """A small cifar-10-python.tar.gz in torchvision's layout; returns (md5s, arrays)."""
    rng = np.random.default_rng(5)
    members: dict[str, bytes] = {}
    arrays: dict[str, np.ndarray] = {}
    for i, batch in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        n = 6 if batch == "test_batch" else 4
        pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)  # rows of R, G, B planes
        labels = [(i + j) % 10 for j in range(n)]
        arrays[batch] = pixels
        arrays[batch + "_labels"] = np.asarray(labels)
        entry = {"batch_label": batch, "labels": labels, "data": pixels}
        members[batch] = pickle.dumps(entry)
    members["batches.meta"] = pickle.dumps({"label_names": CIFAR_CLASSES, "num_vis": 3072})
    sums = {name: hashlib.md5(blob).hexdigest() for name, blob in members.items()}
    archive = folder / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    sums[archive.name] = md5(archive)
    return sums, arrays


def test_cifar10_download_from_mirror(server, tmp_path):
    served, url = server
    sums, arrays = write_cifar_tarball(served)
    data_dir = tmp_path / "data"
    train = data.load("cifar10", "train", data_dir, mirror=url, checksums=sums)
    test = data.load("cifar10", "test", data_dir, mirror=url, checksums=sums)
    assert (len(train), len(test)) == (20, 6)
    assert train.image_shape == (3, 32, 32) and train.images.is_contiguous()
    assert train.class_names == CIFAR_CLASSES
    expected = arrays["test_batch"].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    np.testing.assert_allclose(test.images.numpy(), expected)
    np.testing.assert_array_equal(test.labels.numpy(), arrays["test_batch_labels"])
    first_rows = arrays["data_batch_1"].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    np.testing.assert_allclose(train.images[:4].numpy(), first_rows)

    # A damaged extracted batch is caught by its md5 and named.
    data.clear_cache()
    batch = data_dir / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\x00")
    with pytest.raises(DatasetError, match="data_batch_3"):
        data.load("cifar10", "train", data_dir, download=False, checksums=sums)


def test_cifar10_wrong_archive_checksum(server, tmp_path):
    served, url = server
    sums, _ = write_cifar_tarball(served)
    sums["cifar-10-python.tar.gz"] = "f" * 32
    with pytest.raises(DatasetError, match=r"Checksum mismatch for cifar-10-python\.tar\.gz"):
        data.load("cifar10", "train", tmp_path, mirror=url, checksums=sums)


def test_cifar10_offline(tmp_path):
    mirror = f"http://127.0.0.1:{free_closed_port()}"
    with pytest.raises(DatasetError, match=r"CIFAR-10 is not in .*put cifar-10-python\.tar\.gz"):
        data.load("cifar10", "test", tmp_path, mirror=mirror)


# ----------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_from_debian_copy(tmp_path):
    if not (FMNIST_SYSTEM / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Debian's dataset-fashion-mnist is not installed ({FMNIST_SYSTEM} is empty)")
    from torchvision.datasets import FashionMNIST

    mirror = f"http://127.0.0.1:{free_closed_port()}/"  # the network must not be needed
    train = data.load("fashion-mnist", "train", tmp_path, mirror=mirror)
    test = data.load("fashion-mnist", "test", tmp_path, download=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert train.image_shape == test.image_shape == (1, 28, 28)
    assert train.class_names == list(FashionMNIST.classes)
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()


def test_fashion_mnist_missing_names_debian_package(tmp_path, monkeypatch):
    empty = tmp_path / "no-system-copy"
    empty.mkdir()
    monkeypatch.setenv("LATENTLAB_FMNIST_SYSTEM_DIR", str(empty))
    with pytest.raises(DatasetError) as info:
        data.load("fashion-mnist", "train", tmp_path / "data", download=False)
    message = str(info.value)
    assert message.startswith("Fashion-MNIST is not in ")
    assert "install Debian's dataset-fashion-mnist package" in message
    assert "--data-dir" in message


# ----------------------------------------------------------------------------- idx:<folder>


def test_idx_folder(tmp_path):
    splits = {
        "train": fake_split(30, seed=7, shape=(12, 10), label_values=[1, 3, 7]),
        "test": fake_split(9, seed=8, shape=(12, 10), label_values=[1, 3, 7]),
    }
    folder = tmp_path / "letters"
    write_idx_folder(folder, {"train": splits["train"]}, gz=True)
    write_idx_folder(folder, {"test": splits["test"]}, gz=False)
    name = f"idx:{folder}"
    assert data.image_shape(name) == (1, 12, 10)
    assert data.class_names(name) == ["1", "3", "7"]
    for split, (images, labels) in splits.items():
        loaded = data.load(name, split)
        assert loaded.name == name and loaded.class_names == ["1", "3", "7"]
        # Labels become indices into class_names.
        assert_matches(loaded, images, np.searchsorted([1, 3, 7], labels))


def test_idx_missing_or_malformed(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        data.load(f"idx:{tmp_path / 'nowhere'}")
    with pytest.raises(DatasetError, match="names no folder"):
        data.load("idx:")
    folder = tmp_path / "idx"
    write_idx_folder(folder, {"train": fake_split(5, seed=9)}, gz=False)
    with pytest.raises(DatasetError, match="has no t10k-images-idx3-ubyte"):
        data.load(f"idx:{folder}", "test")
    labels_file = folder / "train-labels-idx1-ubyte"
    labels_file.write_bytes(idx_bytes(np.zeros((5, 2, 2), dtype=np.uint8)))  # magic 2051
    with pytest.raises(DatasetError, match="not an IDX label file"):
        data.load(f"idx:{folder}", "train")
    labels_file.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8))[:-2])  # truncated
    with pytest.raises(DatasetError, match="header announces"):
        data.load(f"idx:{folder}", "train")


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    "name, shape, sizes",
    [
        ("mnist", (1, 28, 28), (60000, 10000)),
        ("fashion-mnist", (1, 28, 28), (60000, 10000)),
        ("kmnist", (1, 28, 28), (60000, 10000)),
        ("cifar10", (3, 32, 32), (50000, 10000)),
        ("digits", (1, 8, 8), (1437, 360)),
    ],
)
def test_dataset_info_of_the_registry_needs_no_files(name, shape, sizes, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_DATA_DIR", str(tmp_path))  # empty: nothing to read
    info = data.dataset_info(name)
    assert (info.image_shape, info.num_classes, (info.train_size, info.test_size)) == (
        shape,
        10,
        sizes,
    )
    assert not any(tmp_path.iterdir())


def test_dataset_info_of_digits_matches_the_loaded_splits():
    info = data.dataset_info("digits")
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert (len(train), len(test)) == (info.train_size, info.test_size)
    assert train.image_shape == info.image_shape and train.num_classes == info.num_classes


def test_dataset_info_of_an_idx_folder_reads_headers(tmp_path):
    splits = {
        "train": fake_split(30, seed=7, shape=(12, 10), label_values=[1, 3, 7]),
        "test": fake_split(9, seed=8, shape=(12, 10), label_values=[1, 3, 7, 9]),
    }
    folder = tmp_path / "letters"
    write_idx_folder(folder, {"train": splits["train"]}, gz=True)
    write_idx_folder(folder, {"test": splits["test"]}, gz=False)
    info = data.dataset_info(f"idx:{folder}")
    assert info.image_shape == (1, 12, 10) and (info.train_size, info.test_size) == (30, 9)
    assert info.num_classes == len(data.class_names(f"idx:{folder}"))


def test_idx_size_cap_is_configurable(tmp_path, monkeypatch):
    folder = tmp_path / "idx"
    write_idx_folder(folder, {"train": fake_split(5, seed=1)}, gz=True)
    monkeypatch.setenv("LATENTLAB_MAX_IDX_BYTES", str(5 * 28 * 28))
    assert len(data.load(f"idx:{folder}", "train")) == 5  # exactly at the cap
    data.clear_cache()
    monkeypatch.setenv("LATENTLAB_MAX_IDX_BYTES", str(5 * 28 * 28 - 1))
    with pytest.raises(DatasetError, match="LATENTLAB_MAX_IDX_BYTES"):
        data.load(f"idx:{folder}", "train")
