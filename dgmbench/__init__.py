"""dgmbench: evaluation and benchmarking suite for deep generative models.

Images are float tensors in [0, 1] of shape (N, C, H, W); likelihoods are in nats per
sample with a kind ('exact', 'bound', 'estimate'); bits/dim use 8-bit dequantised data.
"""

__version__ = "0.1.0"

from .protocol import CallableModel, GenerativeModel, SamplesModel, load_model  # noqa: E402
from .results import MetricValue, Record, RecordStore, to_frame  # noqa: E402


def evaluate(*args, **kwargs):
    """Score a model or sample set; see :func:`dgmbench.evaluate.evaluate`."""
    from .evaluate import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


__all__ = ["CallableModel", "GenerativeModel", "MetricValue", "Record", "RecordStore", "SamplesModel",
           "evaluate", "load_model", "to_frame", "__version__"]
