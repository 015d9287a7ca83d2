"""CIFAR-10 without torchvision: read, decode once, cache as uint8 arrays, split, and batch on the device.

Accepted layouts of ``root`` (the error for a missing or wrong root names them):
- the standard python-pickle layout: ``root/cifar-10-batches-py/{data_batch_1..5,test_batch}`` (or ``root`` is
  that folder); read through a restricted unpickler that only allows numpy's array reconstruction;
- an image folder ``root/{train,test}/<class>/*.jpg|png`` (class folders sorted by name give the label order);
- a tarball (``.tar.gz``/``.tgz``/``.tar``) of that image folder, e.g. shared/data/cifar10_jpg.tar.gz.
Decoding happens once; the arrays are cached as ``.npz`` (read with ``allow_pickle=False``) under
``$NATRL_CACHE`` (default ``~/.cache/natrl``), keyed by the source's path, size and modification time.

The supernet uses the training set only: ``split_indices`` makes the seeded 40% / 60% split (supernet weights /
policy reward). The test set is never used to select anything.

``DeviceBatches`` keeps a split on the device as uint8 and yields normalised float batches; augmentation
(random crop with 4-pixel padding, horizontal flip, optional cutout) runs on the whole batch on the device, no
per-sample Python. Validation batches are not augmented.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from natrl.errors import NatrlError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
LAYOUTS = (
    "cifar-10-batches-py/{data_batch_1..5,test_batch} (python pickle), "
    "train|test/<class>/*.jpg (image folder), or a .tar.gz of that folder"
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class _ArrayUnpickler(pickle.Unpickler):
    """CIFAR's pickles hold dicts of bytes, lists and numpy arrays: allow exactly numpy's array rebuilders."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_pickle_batch(path: Path, label_key: bytes = b"labels"):
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return data, np.asarray(d[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, OSError) as e:
        raise NatrlError(
            f"{path} is not a CIFAR-10 python batch ({e.__class__.__name__}: {e}); expected {LAYOUTS}"
        ) from None


def _read_pickle_layout(folder: Path, dataset: str = "cifar10"):
    if dataset == "cifar100":  # cifar-100-python/{train,test}, fine (100-class) labels
        return (
            *_read_pickle_batch(folder / "train", b"fine_labels"),
            *_read_pickle_batch(folder / "test", b"fine_labels"),
        )
    train = [_read_pickle_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test = _read_pickle_batch(folder / "test_batch")
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), *test)


def _decode(blob: bytes, name: str) -> np.ndarray:
    from PIL import Image  # pillow comes with matplotlib

    try:
        img = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"), dtype=np.uint8)
    except Exception as e:  # PIL raises many types for a broken image
        raise NatrlError(f"cannot decode image {name} ({e.__class__.__name__}); the data set is corrupt") from None
    if img.shape != (32, 32, 3):
        raise NatrlError(f"image {name} is {img.shape[1]}x{img.shape[0]}, CIFAR-10 images are 32x32")
    return img


def _collect(items, source: str, dataset: str = "cifar10"):
    """items: iterable of (relative path parts, bytes loader). Returns x/y for train and test.
    CIFAR-10 labels follow CIFAR's class order; other sets number their class folders in sorted order."""
    out = {"train": ([], []), "test": ([], [])}
    items = [(parts, load) for parts, load in items if len(parts) >= 3 and parts[-3] in out]
    classes = CLASSES if dataset == "cifar10" else sorted({parts[-2] for parts, _ in items if parts[-3] == "train"})
    for parts, load in items:
        split, cls = parts[-3], parts[-2]
        if cls not in classes:
            continue
        out[split][0].append(_decode(load(), "/".join(parts)))
        out[split][1].append(classes.index(cls))
    if not out["train"][0] or not out["test"][0]:
        raise NatrlError(f"{source} has no train/<class>/*.jpg and test/<class>/*.jpg images; expected {LAYOUTS}")
    return tuple(
        np.stack(v) if i == 0 else np.asarray(v, dtype=np.int64)
        for split in ("train", "test")
        for i, v in enumerate(out[split])
    )


def _read_image_folder(root: Path, dataset: str = "cifar10"):
    try:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        return _collect(((p.relative_to(root).parts, p.read_bytes) for p in files), str(root), dataset)
    except OSError as e:  # an unreadable file or folder in the tree
        raise NatrlError(f"cannot read {e.filename or root} ({e.strerror}); check the permissions of --data") from None


def _read_tarball(path: Path, dataset: str = "cifar10"):
    try:
        with tarfile.open(path) as tar:
            members = sorted(
                (m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES)),
                key=lambda m: m.name,
            )
            return _collect(
                ((tuple(m.name.split("/")), lambda m=m: tar.extractfile(m).read()) for m in members), str(path), dataset
            )
    except (tarfile.TarError, OSError, EOFError) as e:
        raise NatrlError(f"cannot read tarball {path} ({e.__class__.__name__}); expected {LAYOUTS}") from None


def _source(root: Path, dataset: str = "cifar10") -> tuple[str, Path]:
    if root.is_file() and root.name.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar", root
    if root.is_dir():
        folder_name, first = (
            ("cifar-100-python", "train") if dataset == "cifar100" else ("cifar-10-batches-py", "data_batch_1")
        )
        for folder in (root / folder_name, root):
            if (folder / first).is_file():
                return "pickle", folder
        if (root / "train").is_dir() and (root / "test").is_dir():
            return "images", root
    if dataset == "cifar100":
        raise NatrlError(
            f"no CIFAR-100 data at {root}; expected cifar-100-python/{{train,test}} (python pickle), "
            "train|test/<class>/*.png (image folder) or a .tar.gz of that folder"
        )
    raise NatrlError(f"no CIFAR-10 data at {root}; expected {LAYOUTS} (e.g. --data path/to/cifar10_jpg.tar.gz)")


def cache_dir() -> Path:
    return Path(os.environ.get("NATRL_CACHE", Path.home() / ".cache" / "natrl"))


CACHE_KEYS = ("train_x", "train_y", "test_x", "test_y")


def _read_cache(cached: Path) -> dict[str, np.ndarray]:
    """The decoded arrays of an earlier read. A truncated or foreign cache file (a kill mid-write by an old
    version, a disk error) is refused with the file to delete, never used half-read."""
    try:
        with np.load(cached, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if (
            sorted(arrays) != sorted(CACHE_KEYS)
            or len(arrays["train_x"]) != len(arrays["train_y"])
            or len(arrays["test_x"]) != len(arrays["test_y"])
        ):
            raise ValueError("unexpected arrays")
        return arrays
    except Exception as e:  # numpy / zipfile raise many types for a corrupt archive
        raise NatrlError(
            f"the data cache {cached} is corrupt ({e.__class__.__name__}); delete it (rm {cached}) "
            "and run again to rebuild it from the data set"
        ) from None


def load_cifar10(root, cache: bool = True, dataset: str = "cifar10") -> dict[str, np.ndarray]:
    """{"train_x": uint8 [N, 32, 32, 3], "train_y": int64 [N], "test_x", "test_y"} from any accepted layout.
    ``dataset="cifar100"`` reads CIFAR-100 the same way (cifar-100-python/{train,test}, or 100 class folders)."""
    kind, path = _source(Path(root).expanduser(), dataset)
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{kind}|{dataset}".encode()).hexdigest()[
        :16
    ]
    cached = cache_dir() / f"{dataset}-{key}.npz"
    if cache and cached.exists():
        return _read_cache(cached)
    reader = {"pickle": _read_pickle_layout, "images": _read_image_folder, "tar": _read_tarball}[kind]
    train_x, train_y, test_x, test_y = reader(path, dataset)
    arrays = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
    if cache:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(cached.stem + ".tmp.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only home only costs the decode next time
    return arrays


def split_indices(n: int, weights_frac: float = 0.4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (supernet-weights, policy-reward) index sets over the *training* set, seeded."""
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(round(weights_frac * n))
    return np.sort(perm[:cut]), np.sort(perm[cut:])


class DeviceBatches:
    """A split held on ``device`` as uint8; ``batches()`` yields (x float normalised [B,3,32,32], y)."""

    def __init__(
        self,
        x_uint8: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        device="cpu",
        augment: bool = False,
        cutout: int = 0,
        seed: int = 0,
    ):
        self.x = torch.as_tensor(x_uint8).permute(0, 3, 1, 2).contiguous().to(device)  # [N, 3, 32, 32] uint8
        self.y = torch.as_tensor(y).to(device)
        self.batch_size, self.augment, self.cutout = batch_size, augment, cutout
        self.device = torch.device(device)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)  # CPU generator: same stream on any device
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return (len(self.y) + self.batch_size - 1) // self.batch_size

    def _rand(self, *shape, high):
        return torch.randint(0, high, shape, generator=self.generator).to(self.device)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
        oy, ox = self._rand(B, high=9), self._rand(B, high=9)
        rows = (oy[:, None] + torch.arange(H, device=x.device))[:, :, None]  # [B, H, 1]
        cols = (ox[:, None] + torch.arange(W, device=x.device))[:, None, :]  # [B, 1, W]
        x = padded[torch.arange(B, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
        flip = self._rand(B, high=2).bool().view(B, 1, 1, 1)
        x = torch.where(flip, x.flip(-1), x)
        if self.cutout:
            x = x * (~self._hole(B, H, W, x.device)).unsqueeze(1)
        # the crop's gather leaves channels-last strides; CPU convolutions (depthwise ones especially) run their
        # backward pass orders of magnitude slower on them
        return x.contiguous()

    def _hole(self, B: int, H: int, W: int, device) -> torch.Tensor:
        """[B, H, W] cutout masks: a cutout x cutout square centred on a random pixel, clipped at the border
        (DARTS' Cutout: rows clip(cy - L/2) .. clip(cy - L/2 + L), exactly L x L inside the image)."""
        cy, cx = self._rand(B, high=H), self._rand(B, high=W)
        top, left = (cy - self.cutout // 2).view(B, 1, 1), (cx - self.cutout // 2).view(B, 1, 1)
        yy = torch.arange(H, device=device).view(1, H, 1)
        xx = torch.arange(W, device=device).view(1, 1, W)
        return (yy >= top) & (yy < top + self.cutout) & (xx >= left) & (xx < left + self.cutout)

    def batches(self, shuffle: bool = True):
        n = len(self.y)
        order = (
            torch.randperm(n, generator=self.generator).to(self.device)
            if shuffle
            else torch.arange(n, device=self.device)
        )
        for i in range(0, n, self.batch_size):
            idx = order[i : i + self.batch_size]
            x = self.x[idx].float().div_(255)
            if self.augment:
                x = self._augment(x)
            yield (x - self.mean) / self.std, self.y[idx]

    def batch(self, i: int):
        """The i-th batch of a fixed, seeded sequence (pass p = i // len(self) uses permutation p), without
        augmentation: every replica that asks for batch i gets the same images, whatever it did before."""
        pass_no, j = divmod(i, len(self))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + pass_no)
        idx = torch.randperm(len(self.y), generator=g)[j * self.batch_size : (j + 1) * self.batch_size].to(self.device)
        x = self.x[idx].float().div_(255)
        return (x - self.mean) / self.std, self.y[idx]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])
