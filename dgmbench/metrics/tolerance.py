"""A metric's tolerance in the regression gate: how much worse it may get before CI fails.

``allowed = max(abs, rel * |baseline|, unc * u)`` in the metric's own units, where ``u`` is
the uncertainty of the difference (see :mod:`dgmbench.regress`). The default tolerance of
each metric lives in its :mod:`dgmbench.metrics.registry` entry.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import DataError, UsageError


@dataclass
class Tolerance:
    """How much worse a metric may get. ``abs`` in the metric's units, ``rel`` a fraction
    of |baseline| (0.05 = 5 %), ``unc`` a factor on the combined recorded uncertainty."""

    abs: float | None = None
    rel: float | None = None
    unc: float | None = None

    def allowed(self, baseline: float, u_base: float | None = None, u_cur: float | None = None) -> float:
        """The allowed worsening (>= 0) for ``baseline`` with the two uncertainties."""
        parts = [0.0]
        if self.abs is not None:
            parts.append(self.abs)
        if self.rel is not None and math.isfinite(baseline):
            parts.append(self.rel * abs(baseline))
        if self.unc is not None:
            us = [u for u in (u_base, u_cur) if u is not None and math.isfinite(u)]
            if us:
                parts.append(self.unc * math.sqrt(sum(u * u for u in us)))
        return max(parts)

    def source(self, baseline: float, u_base: float | None = None, u_cur: float | None = None) -> str:
        """Which part sets :meth:`allowed` ('abs', 'rel 5%', '2u'), for the table."""
        best, label = 0.0, "exact"
        if self.abs is not None and self.abs > best:
            best, label = self.abs, "abs"
        if self.rel is not None and math.isfinite(baseline) and self.rel * abs(baseline) > best:
            best, label = self.rel * abs(baseline), f"rel {self.rel * 100:g}%"
        if self.unc is not None:
            us = [u for u in (u_base, u_cur) if u is not None and math.isfinite(u)]
            if us and self.unc * math.sqrt(sum(u * u for u in us)) > best:
                label = f"{self.unc:g}u"
        return label

    def is_empty(self) -> bool:
        return self.abs is None and self.rel is None and self.unc is None

    def merged(self, other: Tolerance) -> Tolerance:
        """``other``'s set parts over this one's."""
        return Tolerance(*(b if b is not None else a for a, b in
                           ((self.abs, other.abs), (self.rel, other.rel), (self.unc, other.unc))))

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, where: str = "tolerance") -> Tolerance:
        d = d or {}
        if not isinstance(d, dict):
            raise DataError(f"{where} must be an object like {{\"abs\": 0.5}}, got {d!r}")
        unknown = set(d) - {"abs", "rel", "unc"}
        if unknown:
            raise DataError(f"{where} has unknown keys {sorted(unknown)} (known: abs, rel, unc)")
        out = {}
        for k, v in d.items():
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise DataError(f"{where}.{k} must be a finite number >= 0, got {v!r}")
            out[k] = float(v)
        return cls(**out)

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """'0.5' (absolute), '10%' (relative), '2u' / '2sigma' / '2ci' (x uncertainty)."""
        t = text.strip().lower()
        try:
            if t.endswith("%"):
                tol = cls(rel=float(t[:-1]) / 100.0)
            else:
                for suffix in ("sigma", "ci", "u"):
                    if t.endswith(suffix):
                        tol = cls(unc=float(t[: -len(suffix)] or 1.0))
                        break
                else:
                    tol = cls(abs=float(t))
        except ValueError:
            raise UsageError(
                f"bad tolerance '{text}': use a number (absolute, e.g. 0.5), a percentage (10%) "
                "or a multiple of the recorded uncertainty (2u)") from None
        for v in (tol.abs, tol.rel, tol.unc):
            if v is not None and (not math.isfinite(v) or v < 0):
                raise UsageError(f"bad tolerance '{text}': it must be finite and >= 0")
        return tol


