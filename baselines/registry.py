"""The seven families: name -> sub-package, imported lazily.

Each family package exposes ``build_model(config, data_shape, num_classes) -> BaselineModel``
and ``PRESETS: dict[str, dict]`` with keys ``dataset``, ``model`` (config), ``train``
(:class:`baselines.train.TrainConfig` fields) and optionally ``description``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dgmbench.errors import UsageError, suggest

FAMILIES: dict[str, str] = {
    "autoregressive": "baselines.autoregressive",
    "vae": "baselines.vae",
    "flow": "baselines.flow",
    "gan": "baselines.gan",
    "ebm": "baselines.ebm",
    "score": "baselines.score",
    "diffusion": "baselines.diffusion",
}


def family_module(family: str) -> ModuleType:
    if family not in FAMILIES:
        raise UsageError(suggest(family, FAMILIES, "family"))
    return importlib.import_module(FAMILIES[family])


def available_families() -> list[str]:
    """Families whose package imports (all seven once the baselines have landed)."""
    out = []
    for fam in FAMILIES:
        try:
            family_module(fam)
        except ImportError:
            continue
        out.append(fam)
    return out


def get_preset(family: str, preset: str) -> dict:
    presets = family_module(family).PRESETS
    if preset not in presets:
        raise UsageError(suggest(preset, presets, f"preset of {family}"))
    return presets[preset]
