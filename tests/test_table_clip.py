"""``dgmbench table --clip-model/--clip-pretrained``: the CLIP score of class-conditional models in the
leaderboard's alignment columns, with a tiny random open_clip model saved to a temporary file (no
download). Unconditional rows and the real-data row show ``-`` with the reason in their Record."""

from __future__ import annotations

import json

import pytest
import torch

from dgmbench.metrics.clip_score import class_prompts
from dgmbench.results import sha256_file

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
NAME = "dgmbench-tiny-clip-table"


def _save_weights(open_clip, path, seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(open_clip.create_model(NAME, pretrained=None).state_dict(), path)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import open_clip

    d = tmp_path_factory.mktemp("clipcfg")
    (d / f"{NAME}.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(d)
    path = d / "tiny.pt"
    _save_weights(open_clip, path, 0)
    return path


def _records(lb):
    return {r["family"]: r for r in map(json.loads, (lb / "digits-tiny.jsonl").read_text().splitlines())}


def test_clip_score_fills_the_alignment_column_of_conditional_models(tiny_clip, tmp_path, monkeypatch, capsys):
    import open_clip

    from dgmbench.cli import main
    from dgmbench.data.registry import get_dataset

    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    lb, runs = tmp_path / "lb", tmp_path / "runs"
    args = ["--json", "table", "--dataset", "digits", "--preset", "digits-tiny", "--families", "diffusion,vae",
            "--seeds", "1", "--steps", "3", "-n", "40", "--metrics", "cond_acc", "--device", "cpu",
            "--out", str(lb), "--runs-dir", str(runs), "--no-progress",
            "--clip-model", NAME, "--clip-pretrained", str(tiny_clip)]
    assert main(args) == 0
    capsys.readouterr()
    recs = _records(lb)
    cond, uncond, real = recs["diffusion"], recs["vae"], recs["real data"]
    cs = cond["metrics"]["clip_score"]
    assert cs["value"] is not None and 0.0 <= cs["value"] <= 100.0
    assert cs["extra"]["prompts"] == class_prompts(get_dataset("digits", "test").class_names, "digits")
    assert cs["extractor_sha256"] == sha256_file(tiny_clip)  # scored with the file named on the command line
    assert cond["metrics"]["cond_acc"]["value"] is not None
    for r in (uncond, real):
        assert r["metrics"]["clip_score"]["value"] is None and "labels" in r["metrics"]["clip_score"]["note"]
    md = (lb / "digits-tiny.md").read_text()
    assert f"--clip-model {NAME} --clip-pretrained {tiny_clip}" in md.splitlines()[0]
    header = next(line for line in md.splitlines() if line.startswith("| family"))
    assert "CLIP" in header

    # other weights under the same path: re-scored (the key holds the file's sha256), not reused
    _save_weights(open_clip, tiny_clip, 1)
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reused"] == []
    again = _records(lb)["diffusion"]["metrics"]["clip_score"]
    assert again["extractor_sha256"] == sha256_file(tiny_clip) != cs["extractor_sha256"]
    assert again["value"] != cs["value"]
    _save_weights(open_clip, tiny_clip, 0)
