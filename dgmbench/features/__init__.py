"""Feature extractors (Inception via torch-fidelity, CLIP via open_clip, domain classifiers, raw),
float64 streaming statistics, the one-pass feature extraction and the reference cache."""

from .base import FeatureExtractor, RawPixels, state_dict_sha256
from .cache import CachedReference, cache_key, cached_reference_features
from .registry import (
    FeaturePass,
    default_extractor,
    extract_features,
    extractor_info,
    feature_pass,
    get_extractor,
    register_extractor,
    unregister_extractor,
)
from .stats import StreamingStats

__all__ = [
    "CachedReference", "FeatureExtractor", "FeaturePass", "RawPixels", "StreamingStats", "cache_key",
    "cached_reference_features", "default_extractor", "extract_features", "extractor_info", "feature_pass",
    "get_extractor", "register_extractor", "state_dict_sha256", "unregister_extractor",
]
