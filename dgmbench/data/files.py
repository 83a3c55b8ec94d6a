"""Custom data and sample sets: image folders, ``.npz`` / ``.npy`` arrays and ``.pt`` tensors.

Everything comes back as a :class:`DataSplit` with float32 data: images (N, C, H, W) in
[0, 1] (uint8 input is divided by 255; float input must already lie in [0, 1]; channels-last
(N, H, W, C) and grayscale (N, H, W) arrays are accepted), or points (N, D) for 2-D toy
samples. Labels are int64 (N,) when the source has them. A corrupt or unreadable file is a
one-line :class:`DataError` that names it.

Splits: ``split`` picks a split-specific part when the source has one (a ``PATH/<split>``
sub-folder; ``x_<split>`` / ``<split>_images`` / ``<split>`` arrays with ``y_<split>`` /
``<split>_labels``); otherwise the whole source is used whatever the split, and ``split``
only names the result. ``split=None`` always uses the whole source.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ..errors import DataError, UsageError
from ..validation import as_image_tensor, check_points
from .base import DataSplit

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
SPLIT_DIRS = ("train", "test", "val", "valid", "validation")
DATA_KEYS = ("images", "x", "samples", "data", "arr_0")
LABEL_KEYS = ("labels", "y")
MAX_POINT_DIM = 16
MAX_IMAGE_PIXELS = 89_478_485  # PIL's default Image.MAX_IMAGE_PIXELS (~0.25 GiB as RGB): larger is refused
_GRAY_MODES = {"1", "L", "LA", "La", "I;16", "I;16L", "I;16B", "I;16N"}
_ALPHA_MODES = {"LA", "La", "RGBA", "RGBa", "PA"}


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _image_files(folder: Path) -> list[Path]:
    """The folder's image files in natural order; a dangling symbolic link named like an image is
    an error (like a corrupt image), not silently skipped."""
    files = []
    for p in folder.iterdir():
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if p.is_symlink() and not p.exists():
            raise DataError(f"{p}: a symbolic link to {os.readlink(p)}, which does not exist (a dangling link among "
                            "the images)")
        if p.is_file():
            files.append(p)
    return sorted(files, key=_natural_key)


def _split_root(root: Path, split: str | None) -> Path:
    if split is None:
        return root
    if (root / split).is_dir():
        return root / split
    present = [s for s in SPLIT_DIRS if (root / s).is_dir()]
    if present:
        raise DataError(f"{root} has split sub-folders {', '.join(present)} but no '{split}'; choose one of them")
    return root


def _check_pixels(img, path: Path) -> None:
    """Refuse an image whose header claims more than :data:`MAX_IMAGE_PIXELS` pixels, before decoding it."""
    if img.width * img.height > MAX_IMAGE_PIXELS:
        raise DataError(f"{path}: the header claims {img.width}x{img.height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS:,} dgmbench decodes (a decompression bomb or not a sample image)")


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        _check_pixels(img, path)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read the image ({type(e).__name__}: {e}); the file is corrupt or truncated") from e
    return img


def _to_array(img, path: Path, channels: int, alpha: str) -> np.ndarray:
    """PIL image -> uint8 (H, W, channels) following the folder policy."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode.startswith("I;16"):
        arr = np.rint(np.asarray(img, dtype=np.float64) / 257.0).astype(np.uint8)[..., None]
    elif mode in ("I", "F"):
        raise DataError(f"{path}: 32-bit {'integer' if mode == 'I' else 'float'} images are not supported; save 8-bit PNG/JPEG")
    elif mode in _ALPHA_MODES:
        rgba = np.asarray(img.convert("RGBA" if mode not in ("LA", "La") else "LA"), dtype=np.float64)
        color, a = rgba[..., :-1], rgba[..., -1:] / 255.0
        if alpha == "white":
            color = color * a + 255.0 * (1.0 - a)
        elif alpha == "black":
            color = color * a
        arr = np.rint(color).astype(np.uint8)
    elif mode in ("1", "L"):
        arr = np.asarray(img.convert("L"))[..., None]
    else:  # RGB, CMYK, YCbCr, ...
        arr = np.asarray(img.convert("RGB"))
    if arr.shape[-1] == channels:
        return arr
    if channels == 3:
        return np.repeat(arr, 3, axis=-1)
    # RGB -> luma with ITU-R 601-2 weights (PIL's convert("L"))
    from PIL import Image

    return np.asarray(Image.fromarray(arr).convert("L"))[..., None]


def load_folder(
    path: str | os.PathLike,
    split: str | None = "train",
    *,
    resize: int | tuple[int, int] | None = None,
    alpha: str = "white",
    channels: int | None = None,
) -> DataSplit:
    """Load every PNG / JPEG / WebP image of a folder as float32 (N, C, H, W) in [0, 1].

    Policy:

    - files are read in natural name order (``2.png`` before ``10.png``); hidden files and
      other extensions are ignored. When the folder holds no images but sub-folders that
      do, each sub-folder is a class (sorted names; labels 0..K-1), as torchvision's
      ImageFolder does.
    - sizes: all images must have the same size. Mixed sizes are an error that lists the
      sizes found, unless ``resize=(H, W)`` (or an int for square) is given: then every
      image of another size is resized with PIL's antialiased bicubic filter.
    - channels: if every image is grayscale (modes 1, L, LA, 16-bit) the result has 1
      channel; if any is colour, all are converted to RGB (gray replicated to 3 channels).
      ``channels=1`` or ``3`` forces it (RGB -> gray uses PIL's ITU-R 601-2 luma).
    - transparency (RGBA, LA, palette with transparency) is composited on a white
      background by default; ``alpha="black"`` composites on black, ``alpha="drop"``
      ignores the alpha channel.
    - 16-bit grayscale is scaled to 8 bits (round(v / 257)); 32-bit images are rejected.
    """
    if alpha not in ("white", "black", "drop"):
        raise UsageError(f"alpha must be 'white', 'black' or 'drop', not '{alpha}'")
    if channels not in (None, 1, 3):
        raise UsageError(f"channels must be 1 or 3, not {channels}")
    target = None
    if resize is not None:
        target = (int(resize), int(resize)) if isinstance(resize, int) else tuple(int(v) for v in resize)
        if len(target) != 2 or min(target) < 1:
            raise UsageError(f"resize must be a positive int or (H, W), not {resize!r}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of images")
    root = _split_root(root, split)

    files = _image_files(root)
    labels: list[int] | None = None
    class_names: list[str] | None = None
    if not files:
        subdirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=_natural_key)
        per_class = [(d.name, _image_files(d)) for d in subdirs]
        per_class = [(n, fs) for n, fs in per_class if fs]
        if not per_class:
            raise DataError(f"{root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)} files, or class sub-folders of them)")
        class_names = [n for n, _ in per_class]
        files = [f for _, fs in per_class for f in fs]
        labels = [i for i, (_, fs) in enumerate(per_class) for _ in fs]

    # first pass: headers only (size and mode), to apply the size and channel policies
    from PIL import Image, UnidentifiedImageError

    sizes: Counter = Counter()
    example: dict[tuple[int, int], Path] = {}
    any_color = False
    for f in files:
        try:
            with Image.open(f) as img:
                _check_pixels(img, f)
                hw = (img.height, img.width)
                any_color |= img.mode not in _GRAY_MODES
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise DataError(f"{f}: cannot read the image ({type(e).__name__}: {e}); the file is corrupt or not an image") from e
        sizes[hw] += 1
        example.setdefault(hw, f)
    if len(sizes) > 1 and target is None:
        listed = ", ".join(f"{h}x{w} ({c} files, e.g. {example[(h, w)].name})" for (h, w), c in sizes.most_common())
        raise DataError(f"{root}: images have {len(sizes)} different sizes (HxW): {listed}; pass resize=(H, W) to resize them all")
    n_channels = channels or (3 if any_color else 1)

    arrays = []
    resized = 0
    for f in files:
        with _open(f) as img:
            if target is not None and (img.height, img.width) != target:
                src = img.convert("RGBA" if "transparency" in img.info else "RGB") if img.mode == "P" else img
                arrays.append(_to_array(src.resize((target[1], target[0]), Image.BICUBIC), f, n_channels, alpha))
                resized += 1
            else:
                arrays.append(_to_array(img, f, n_channels, alpha))
    stacked = np.stack(arrays)  # (N, H, W, C) uint8
    data = torch.from_numpy(stacked).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    return DataSplit(
        name=f"folder:{path}",
        split=split or "all",
        data=data,
        labels=None if labels is None else torch.tensor(labels, dtype=torch.int64),
        class_names=class_names,
        meta={"source": str(root), "files": len(files), "resized": resized,
              "resize": "PIL bicubic (antialiased)" if resized else None, "alpha": alpha, "levels": 256},
    )


def _pick(arrays: Mapping[str, Any], split: str | None, source: str) -> tuple[str, Any, Any]:
    """Choose (data key, data, labels) from a mapping of arrays, split-specific keys first."""
    keys = list(arrays.keys())
    data_key = label = None
    if split is not None:
        for k in (f"x_{split}", f"{split}_images", f"{split}_x", split):
            if k in arrays:
                data_key = k
                break
        if data_key is not None:
            for k in (f"y_{split}", f"{split}_labels", f"{split}_y"):
                if k in arrays:
                    label = k
                    break
    if data_key is None:
        data_key = next((k for k in DATA_KEYS if k in arrays), None)
        if data_key is None:
            split_keys = [k for k in keys if any(s in k for s in SPLIT_DIRS)]
            hint = f"; for split '{split}' name it 'x_{split}'" if split_keys else ""
            raise DataError(f"{source}: no array named {' / '.join(DATA_KEYS)} (found keys: {', '.join(map(str, keys)) or 'none'}){hint}")
        label = next((k for k in LABEL_KEYS if k in arrays), None)
        if label is None and data_key == "arr_0" and "arr_1" in arrays:
            label = "arr_1"
    return data_key, arrays[data_key], None if label is None else arrays[label]


def arrays_to_split(data, labels, *, name: str, split: str | None, source: str, class_names=None) -> DataSplit:
    """Validate and convert arrays (NumPy or torch) into a :class:`DataSplit`."""
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu()
        if data.dtype in (torch.float16, torch.bfloat16, torch.float64):
            data = data.float()
    elif isinstance(data, np.ndarray) and data.dtype in (np.float16, np.float64):
        data = data.astype(np.float32)
    elif not isinstance(data, np.ndarray):
        raise DataError(f"{source}: expected an array or tensor of samples, got {type(data).__name__}")
    shape = tuple(data.shape)
    if len(shape) == 2:
        if shape[1] > MAX_POINT_DIM:
            raise DataError(
                f"{source}: a 2-D array of shape {shape} is read as points, but {shape[1]} dims looks like "
                "flattened images; reshape it to (N, C, H, W) or (N, H, W, C)"
            )
        t = check_points(data, name=source, dim=shape[1]).float()
    elif len(shape) in (3, 4):
        t = as_image_tensor(data, name=source)
    else:
        raise DataError(f"{source}: expected images (N, C, H, W), (N, H, W, C), (N, H, W) or points (N, 2); got shape {shape}")
    lab = None
    if labels is not None:
        lab = torch.as_tensor(np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels))
        if lab.ndim != 1 or lab.shape[0] != t.shape[0] or lab.dtype.is_floating_point or lab.dtype == torch.bool:
            raise DataError(f"{source}: labels must be integers of shape ({t.shape[0]},), got {lab.dtype} {tuple(lab.shape)}")
        lab = lab.long()
    if class_names is not None:
        class_names = [str(c) for c in np.asarray(class_names).tolist()]
    return DataSplit(name=name, split=split or "all", data=t.contiguous(), labels=lab, class_names=class_names,
                     meta={"source": source})


def max_array_bytes() -> int:
    """The largest array a samples file may declare: this machine's physical memory (bytes)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 64 * 2**30


def _check_npy_header(f: IO[bytes], available: int, source: str) -> None:
    """Read the ``.npy`` header at ``f`` and refuse, before any allocation, an array that claims more
    bytes than the ``available`` ones after the header or than :func:`max_array_bytes`."""
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f, max_header_size=10_000)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise DataError(f"{source}: not a readable .npy array (bad header: {e})") from e
    if dtype.hasobject:
        raise DataError(f"{source}: holds Python objects (dtype {dtype}); dgmbench reads plain numeric arrays only")
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    left = available - f.tell()
    if claimed > max_array_bytes():
        raise DataError(f"{source}: the header claims shape {tuple(shape)} of {dtype} ({claimed / 2**30:,.1f} GiB), "
                        f"more than this machine's memory ({max_array_bytes() / 2**30:,.1f} GiB); refusing to allocate it")
    if claimed > left:
        raise DataError(f"{source}: the header claims shape {tuple(shape)} of {dtype} ({claimed:,} bytes) but only "
                        f"{max(left, 0):,} bytes follow; the file is truncated or forged")


def _check_sizes(path: Path) -> None:
    """Check every array header of an ``.npy`` / ``.npz`` file against the bytes really there."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if info.filename.endswith(".npy"):
                        with z.open(info) as f:
                            _check_npy_header(f, info.file_size, f"{path}[{info.filename[:-4]}]")
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    elif path.suffix.lower() == ".npy":
        with open(path, "rb") as f:
            _check_npy_header(f, path.stat().st_size, str(path))


def load_npz(path: str | os.PathLike, split: str | None = "train") -> DataSplit:
    """Load samples from an ``.npz`` (keys ``images`` / ``x`` / ``samples`` / ``data`` / ``arr_0``,
    optional ``labels`` / ``y`` / ``arr_1`` and ``class_names``) or a plain ``.npy`` array."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    _check_sizes(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            data_key, data, labels, names = None, loaded, None, None
        else:
            with loaded:
                data_key, data, labels = _pick(loaded, split, str(path))
                data = np.asarray(data)
                labels = None if labels is None else np.asarray(labels)
                names = loaded["class_names"] if "class_names" in loaded.files else None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{path}: not a readable .npz/.npy file ({type(e).__name__}: {e})") from e
    source = f"{path}[{data_key}]" if data_key else str(path)
    return arrays_to_split(data, labels, name=f"npz:{path}", split=split, source=source, class_names=names)


def load_pt(path: str | os.PathLike, split: str | None = "train") -> DataSplit:
    """Load samples from a ``torch.save`` file: a tensor, a ``(data, labels)`` pair, or a dict
    with the same keys as :func:`load_npz`. Read with ``weights_only=True`` (no code runs)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt files
        if not zipfile.is_zipfile(path):
            reason = "not a torch.save archive: the file is corrupt, truncated or in another format"
        elif "Weights only load failed" in str(e):
            reason = "it holds objects other than tensors, lists and dicts; save plain tensors"
        else:
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise DataError(f"{path}: cannot load it as a torch file of tensors ({reason})") from e
    data_key, names = None, None
    if isinstance(obj, torch.Tensor):
        data, labels = obj, None
    elif isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(o, torch.Tensor) for o in obj):
        data, labels = obj
    elif isinstance(obj, Mapping):
        data_key, data, labels = _pick(obj, split, str(path))
        names = obj.get("class_names")
    else:
        raise DataError(f"{path}: expected a tensor, a (data, labels) pair or a dict of tensors, got {type(obj).__name__}")
    source = f"{path}[{data_key}]" if data_key else str(path)
    return arrays_to_split(data, labels, name=f"pt:{path}", split=split, source=source, class_names=names)


def load_samples_path(path: str | os.PathLike) -> DataSplit:
    """Load a sample set from a folder of images or an ``.npz`` / ``.npy`` / ``.pt`` / ``.pth`` file."""
    p = Path(path).expanduser()
    if p.is_dir():
        return load_folder(p, split=None)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    ext = p.suffix.lower()
    if ext in (".npz", ".npy"):
        return load_npz(p, split=None)
    if ext in (".pt", ".pth"):
        return load_pt(p, split=None)
    raise UsageError(f"{p}: unsupported samples file '{ext or p.name}'; give a folder of images or an .npz, .npy or .pt file")
