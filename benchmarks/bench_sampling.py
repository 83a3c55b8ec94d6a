"""Sampling speed of every baseline: samples/s, network evaluations per sample (NFE) and batch size.

Each case builds a family's model from a preset's configuration (untrained, seed 0: the
work per sample does not depend on the weights' values, so the speed equals a trained
checkpoint's) and times ``model.sample(batch)`` after one warm-up call, with device
synchronisation, through dgmbench's own ``measure_speed``. Two ways to run::

    .venv/bin/pytest benchmarks/bench_sampling.py --benchmark-only --benchmark-group-by=group
    .venv/bin/python benchmarks/bench_sampling.py [--out table.md]     # a Markdown table

Environment: ``DGMBENCH_BENCH_PRESETS`` (comma-separated, default ``digits,ring8``; on a GPU
e.g. ``mnist-gpu,cifar10``), ``DGMBENCH_BENCH_FAMILIES`` (default: all seven),
``DGMBENCH_BENCH_BS`` (batch size, default 256), ``DGMBENCH_BENCH_ROUNDS`` (timed calls,
default 3), ``DGMBENCH_BENCH_DEVICE`` (default: cuda when available, else cpu).
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
import torch

FAMILIES = ("autoregressive", "vae", "flow", "gan", "ebm", "score", "diffusion")
PRESETS = [p for p in os.environ.get("DGMBENCH_BENCH_PRESETS", "digits,ring8").split(",") if p]
SELECTED = [f for f in os.environ.get("DGMBENCH_BENCH_FAMILIES", ",".join(FAMILIES)).split(",") if f]
BS = int(os.environ.get("DGMBENCH_BENCH_BS", "256"))
ROUNDS = int(os.environ.get("DGMBENCH_BENCH_ROUNDS", "3"))
DEVICE = os.environ.get("DGMBENCH_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def build_untrained(family: str, preset: str, device: str) -> torch.nn.Module:
    """The preset's model with seed-0 initial weights, on ``device``, in eval mode."""
    from baselines.registry import family_module, get_preset
    from dgmbench.data.registry import DATASETS

    spec = get_preset(family, preset)
    info = DATASETS[spec["dataset"]]
    mcfg = dict(spec.get("model", {}))
    torch.manual_seed(0)
    model = family_module(family).build_model(mcfg, tuple(info.shape), info.num_classes if mcfg.get("conditional") else None)
    return model.to(device).eval()


def time_sampling(family: str, preset: str, *, batch_size: int = BS, rounds: int = ROUNDS, device: str = DEVICE) -> dict:
    """samples/s (median, min, max over ``rounds`` timed calls), NFE and the settings of one case."""
    from dgmbench.metrics.speed import measure_speed

    model = build_untrained(family, preset, device)
    mvs = {mv.name: mv for mv in measure_speed(model, batch_size=batch_size, warmup=1, repeats=rounds, device=device)}
    sps = mvs["samples_per_s"]
    nfe = mvs["nfe"].value if "nfe" in mvs else None
    return {"family": family, "preset": preset, "device": sps.extra.get("device_name", device), "batch_size": batch_size,
            "samples_per_s": sps.value, "min": sps.ci_low, "max": sps.ci_high, "nfe": nfe,
            "network_evals_per_s": None if nfe is None else sps.value * nfe, "threads": torch.get_num_threads()}


def _cases() -> list[tuple[str, str]]:
    from baselines.registry import family_module

    return [(f, p) for p in PRESETS for f in SELECTED if p in family_module(f).PRESETS]


@pytest.mark.parametrize("family,preset", _cases())
def test_sampling_speed(benchmark, family, preset):
    benchmark.group = f"sampling, preset {preset}, batch {BS}, {DEVICE}"
    from dgmbench.devices import synchronize

    model = build_untrained(family, preset, DEVICE)
    gen = torch.Generator().manual_seed(0)
    dev = torch.device(DEVICE)

    def draw():
        with torch.no_grad():
            out = model.sample(BS, generator=gen)
        synchronize(dev)
        return out

    seconds: list[float] = []

    def timed_draw():
        t0 = time.perf_counter()
        out = draw()
        seconds.append(time.perf_counter() - t0)
        return out

    out = benchmark.pedantic(timed_draw, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert out.shape[0] == BS and bool(torch.isfinite(out).all())
    nfe = getattr(model, "nfe_per_sample", None)
    sps = BS / statistics.median(seconds[-ROUNDS:])  # the timed rounds (works with --benchmark-disable too)
    benchmark.extra_info.update(family=family, preset=preset, batch_size=BS, device=DEVICE, samples_per_s=sps,
                                nfe=nfe, network_evals_per_s=None if nfe is None else sps * nfe)


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _rows():
    for family, preset in _cases():
        r = time_sampling(family, preset)
        yield [preset, family, f"{r['device']} ({r['threads']} threads)", str(r["batch_size"]),
               f"{_fmt(r['samples_per_s'])} [{_fmt(r['min'])}, {_fmt(r['max'])}]", _fmt(r["nfe"]),
               _fmt(r["network_evals_per_s"])]


def main(argv: list[str] | None = None) -> int:
    from markdown_table import markdown_table_main

    header = ["preset", "family", "device", "batch", "samples/s (median [min, max])", "NFE", "network evals/s"]
    return markdown_table_main(__doc__.split("\n", 1)[0], header, _rows, argv)


if __name__ == "__main__":
    raise SystemExit(main())
