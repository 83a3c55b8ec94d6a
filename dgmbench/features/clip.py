"""CLIP image and text embeddings through open_clip.

``ClipExtractor(model_name, pretrained)`` calls ``open_clip.create_model_and_transforms(
model_name, pretrained=...)`` where ``pretrained`` is an open_clip tag (e.g. 'openai',
resolved to a file through open_clip's own download/cache) or a local checkpoint file.
``extract(images)`` -> ``{"clip": (N, D)}`` L2-normalised image embeddings;
``encode_text(prompts)`` -> (M, D) L2-normalised text embeddings (open_clip's tokenizer).

Preprocessing: open_clip's inference transform (``preprocess_val``) applied to float
tensors in [0, 1] rather than PIL images: its ``Resize`` (the model's interpolation,
bicubic for OpenAI CLIP, shortest side to the model's image size, torchvision's
antialiased tensor resize) and ``CenterCrop``, then a clamp to [0, 1] (the PIL path
saturates at uint8 after resizing; the tensor path is not re-quantised) and the model's
mean/std ``Normalize``. Grayscale is repeated to 3 channels. The recorded resize mode is
e.g. ``open_clip-bicubic-shortest-224-tensor``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UsageError, WeightsMissingError
from .inception import downloads_allowed, file_sha256


class ClipExtractor:
    """open_clip image encoder as a FeatureExtractor (``{"clip": normalised embeddings}``)."""

    name = "clip"
    outputs = ("clip",)
    feature_output = "clip"
    logits_output = None

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | os.PathLike = "openai",
        *,
        device: str | torch.device = "cpu",
        cache_dir: str | None = None,
    ):
        import open_clip  # several seconds to import; only CLIP runs pay it

        if model_name not in open_clip.list_models():
            from ..errors import suggest

            raise UsageError(suggest(model_name, open_clip.list_models(), "open_clip model"))
        weights_file = self._resolve(open_clip, model_name, str(pretrained), cache_dir)
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=str(weights_file), device="cpu"
        )
        self.model.eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.model_name = model_name
        self.pretrained = str(pretrained)
        self.weights_path = Path(weights_file)
        self.sha256 = file_sha256(weights_file)
        self.device = torch.device(device)
        self.model.to(self.device)
        cfg = self.model.visual.preprocess_cfg
        size = cfg.get("size", 224)
        if not isinstance(size, int):
            size = size[0] if len(set(size)) == 1 else "x".join(map(str, size))
        self.resize = f"open_clip-{cfg.get('interpolation', 'bicubic')}-{cfg.get('resize_mode', 'shortest')}-{size}-tensor"
        self.config_id = model_name
        self.embed_dim = int(self.encode_text(["a"]).shape[1])

    @staticmethod
    def _resolve(open_clip, model_name: str, pretrained: str, cache_dir: str | None) -> Path:
        """A local file for ``pretrained`` (a path, or a tag downloaded by open_clip when allowed)."""
        p = Path(pretrained).expanduser()
        if p.is_file():
            return p
        if os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
            raise WeightsMissingError(f"CLIP checkpoint file '{pretrained}' does not exist")
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained not in tags:
            raise UsageError(
                f"unknown open_clip pretrained tag '{pretrained}' for {model_name} (known: {', '.join(tags) or 'none'}); "
                "or pass a local checkpoint file"
            )
        if not downloads_allowed():
            raise WeightsMissingError(
                f"CLIP weights {model_name}/{pretrained} would need a download, which is disabled "
                "(DGMBENCH_OFFLINE or CI); download the checkpoint elsewhere and pass its path as pretrained="
            )
        from open_clip.pretrained import download_pretrained, get_pretrained_cfg

        try:
            path = download_pretrained(get_pretrained_cfg(model_name, pretrained), cache_dir=cache_dir)
        except Exception as e:  # noqa: BLE001 - network, hub or cache errors
            raise WeightsMissingError(
                f"could not obtain CLIP weights {model_name}/{pretrained} ({type(e).__name__}: {e}); "
                "download the checkpoint and pass its path as pretrained="
            ) from None
        if not path or not Path(path).is_file():
            raise WeightsMissingError(f"open_clip returned no file for {model_name}/{pretrained}")
        return Path(path)

    def preprocess_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """Float [0, 1] (N, 1|3, H, W) -> the model's normalised input, with open_clip's val transforms.

        Each transform of ``preprocess_val`` is applied to the batch tensor (Resize and
        CenterCrop are tensor-capable; MaybeConvertMode/MaybeToTensor pass tensors through),
        with a clamp to [0, 1] just before ``Normalize``.
        """
        from torchvision.transforms import Normalize

        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        for t in self.preprocess.transforms:
            x = t(x.clamp(0.0, 1.0)) if isinstance(t, Normalize) else t(x)
        return x

    def extract(self, images: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        outs = list(self.outputs if outputs is None else outputs)
        if any(o != "clip" for o in outs):
            raise ValueError(f"clip has no output(s) {[o for o in outs if o != 'clip']}; it provides ['clip']")
        x = self.preprocess_tensor(images.to(self.device))
        with torch.inference_mode():
            emb = self.model.encode_image(x)
        return {"clip": F.normalize(emb.float(), dim=-1).cpu()}

    def encode_text(self, prompts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """L2-normalised text embeddings (len(prompts), D), float32 on CPU."""
        if isinstance(prompts, str):
            prompts = [prompts]
        out = []
        for i in range(0, len(prompts), batch_size):
            tokens = self.tokenizer(list(prompts[i : i + batch_size])).to(self.device)
            with torch.inference_mode():
                out.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(out, 0)

    def __repr__(self) -> str:
        return f"ClipExtractor({self.model_name}, {self.pretrained}, sha256={self.sha256[:12]})"
