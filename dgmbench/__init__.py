"""dgmbench: evaluation and benchmarking suite for deep generative models.

Images are float tensors in [0, 1] of shape (N, C, H, W); likelihoods are in nats per
sample with a kind ('exact', 'bound', 'estimate'); bits/dim use 8-bit dequantised data.

The public names below are imported lazily (PEP 562), so ``import dgmbench`` - which the
``pytest11`` plugin entry point does in every pytest run - does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Evaluator": ".harness",
    "EvalOptions": ".options",
    "evaluate": ".harness",
    "register_metric": ".metrics.registry",
    "register_loader": ".protocol",
    "CallableModel": ".protocol",
    "GenerativeModel": ".protocol",
    "SamplesModel": ".protocol",
    "load_model": ".protocol",
    "MetricValue": ".results",
    "Record": ".results",
    "RecordStore": ".results",
    "to_frame": ".results",
    "register_extractor": ".features.registry",
    "load_ref_stats": ".features.stats_file",
}

if TYPE_CHECKING:  # pragma: no cover
    from .features.registry import register_extractor  # noqa: F401
    from .features.stats_file import load_ref_stats  # noqa: F401
    from .harness import Evaluator, evaluate  # noqa: F401
    from .metrics.registry import register as register_metric  # noqa: F401
    from .options import EvalOptions  # noqa: F401
    from .protocol import CallableModel, GenerativeModel, SamplesModel, load_model, register_loader  # noqa: F401
    from .results import MetricValue, Record, RecordStore, to_frame  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        attr = "register" if name == "register_metric" else name
        value = getattr(importlib.import_module(_LAZY[name], __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dgmbench' has no attribute {name!r}")


__all__ = ["CallableModel", "EvalOptions", "Evaluator", "GenerativeModel", "MetricValue", "Record", "RecordStore",
           "SamplesModel", "evaluate", "load_model", "load_ref_stats", "register_extractor", "register_loader",
           "register_metric", "to_frame", "__version__"]
