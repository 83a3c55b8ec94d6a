"""Reference baselines of seven generative-model families behind dgmbench's GenerativeModel protocol."""

from .registry import FAMILIES, available_families, family_module, get_preset

__all__ = ["FAMILIES", "available_families", "family_module", "get_preset"]
