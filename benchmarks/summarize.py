"""pytest-benchmark JSON files of this folder's benchmarks -> the Markdown tables of RESULTS.md, with ratios.

    python benchmarks/summarize.py OUT/*.json [--device-info OUT/device.txt] [--out summary.md]

Each case's numbers come from its ``extra_info`` (what the benchmark measured: images/s,
samples/s, FID, ...); the tables put dgmbench and its peer side by side and give the ratio
(peer's time / dgmbench's, > 1 when dgmbench is faster). Cases this script does not know are
listed by name and median time, so nothing measured is dropped silently.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _test(b: dict) -> str:
    return b["name"].split("[", 1)[0]


def features_table(cases: list[dict]) -> list[str]:
    """Feature throughput: one row per (input size, batch, arithmetic), dgmbench beside torch-fidelity."""
    pairs: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for b in cases:
        e = b["extra_info"]
        key = (e.get("device_name", e.get("device")), e["size"], e["batch_size"], ",".join(e.get("opts") or []) or "-",
               e.get("arithmetic", "-"))
        pairs[key][e["impl"]] = e
    rows = []
    for key in sorted(pairs, key=lambda k: (str(k[0]), k[1], k[3], k[2])):
        dev, size, bs, opts, arith = key
        d, t = pairs[key].get("dgmbench"), pairs[key].get("torch-fidelity")
        ratio = d["images_per_s"] / t["images_per_s"] if d and t else None
        frac = d.get("fraction_of_peak") if d else None
        rows.append([dev, f"{size}x{size}", str(bs), opts, arith, _fmt(d and d["images_per_s"]),
                     _fmt(t and t["images_per_s"]), "-" if ratio is None else f"{ratio:.2f}x",
                     _fmt(d and d.get("achieved_tflops")), "-" if frac is None else f"{100 * frac:.1f}%"])
    return _table(["device", "input", "batch", "dgmbench options", "arithmetic", "dgmbench images/s",
                   "torch-fidelity images/s", "dgmbench / torch-fidelity", "dgmbench TFLOP/s", "of peak"], rows)


def precision_table(cases: list[dict]) -> list[str]:
    """FID and speed of each Inception precision, relative to fp32."""
    rows = []
    base = {b["extra_info"]["device"]: b["extra_info"] for b in cases if b["extra_info"]["precision"] == "fp32"}
    for b in cases:
        e = b["extra_info"]
        ref = base.get(e["device"])
        rows.append([e["precision"], e.get("extractor", "-"), e["device"], f"{e['fid']:.6f}",
                     f"{e.get('rel_change', float('nan')):.2e}", _fmt(e["images_per_s"]),
                     "-" if not ref else f"{e['images_per_s'] / ref['images_per_s']:.2f}x"])
    return _table(["precision", "extractor config", "device", "FID", "relative change vs fp32", "images/s",
                   "speed vs fp32"], rows)


def sampling_table(cases: list[dict]) -> list[str]:
    rows = []
    for b in sorted(cases, key=lambda b: (b["extra_info"]["preset"], b["extra_info"]["family"])):
        e = b["extra_info"]
        rows.append([e["preset"], e["family"], e.get("device", "-"), str(e["batch_size"]), _fmt(e["samples_per_s"]),
                     _fmt(e.get("nfe")), _fmt(e.get("network_evals_per_s"))])
    return _table(["preset", "family", "device", "batch", "samples/s", "NFE", "network evals/s"], rows)


def end_to_end_table(cases: list[dict]) -> list[str]:
    """FID/KID end to end (in-process or command line): wall time, FID, KID of both sides and the ratio."""
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for b in cases:
        groups[b["group"]][b["extra_info"]["impl"]] = b["extra_info"]
    rows = []
    for group, sides in groups.items():
        d, t = sides.get("dgmbench"), sides.get("torch-fidelity")
        for name, e in (("dgmbench", d), ("torch-fidelity", t)):
            if e is None:
                continue
            ratio = t["wall_s"] / d["wall_s"] if (d and t and name == "dgmbench") else None
            rows.append([group, name, _fmt(e["wall_s"]), _fmt(e.get("cpu_s")), _fmt(e["images_per_s"]),
                         f"{e['fid']:.6f}", f"{e['kid']:.3e}", "-" if ratio is None else f"{ratio:.2f}x"])
    return _table(["case", "implementation", "wall (s)", "CPU (s)", "images/s", "FID", "KID",
                   "torch-fidelity wall / dgmbench's"], rows)


SECTIONS = (
    ("test_extract", "Inception feature extraction", features_table),
    ("test_precision_fid_change", "Inception precision: FID change and speed", precision_table),
    ("test_sampling_speed", "Sampling speed of every baseline", sampling_table),
    ("test_fid_kid_end_to_end", "FID + KID end to end", end_to_end_table),
    ("test_fid_kid_5000_cifar", "FID + KID end to end", end_to_end_table),
    ("test_score_cli_10k_vs_fidelity", "Command line against command line", end_to_end_table),
)


def summarize(paths: list[Path], device_info: str | None = None) -> str:
    """The Markdown summary of pytest-benchmark JSON files."""
    by_test: dict[str, list[dict]] = defaultdict(list)
    meta = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        commit = (data.get("commit_info") or {}).get("id") or "none"
        meta.append(f"- `{Path(p).name}`: {data.get('datetime', '?')}, commit "
                    f"{commit[:10] if commit != 'unversioned' else commit}, "
                    f"{(data.get('machine_info') or {}).get('cpu', {}).get('brand_raw', '?')}")
        for b in data.get("benchmarks", []):
            by_test[_test(b)].append(b)
    out = ["# Benchmark summary", ""]
    if device_info:
        out += ["Device:", "", "```", device_info.strip(), "```", ""]
    out += ["Files:", "", *meta, ""]
    done: set[str] = set()
    for test, title, fn in SECTIONS:
        cases = by_test.get(test)
        if not cases:
            continue
        out += [f"## {title}", "", *fn(cases), ""]
        done.add(test)
    rest = [(t, b) for t, bs in by_test.items() if t not in done for b in bs]
    if rest:
        out += ["## Other cases", "", *_table(["case", "median (s)"],
                                                [[b["name"], _fmt(b["stats"]["median"])] for _, b in rest]), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("json", nargs="+", type=Path, help="pytest-benchmark --benchmark-json files")
    ap.add_argument("--device-info", type=Path, help="a text file describing the device (printed in a code block)")
    ap.add_argument("--out", type=Path, help="write the Markdown here too")
    args = ap.parse_args(argv)
    present = [p for p in args.json if p.exists()]
    if not present:
        ap.error("none of the JSON files exists (did every benchmark run fail? see the .log files beside them)")
    info = args.device_info.read_text() if args.device_info and args.device_info.exists() else None
    md = summarize(present, info)
    print(md)
    if args.out:
        args.out.write_text(md + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
