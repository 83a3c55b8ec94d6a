"""`dgmbench score --sampling key=value`: a baseline's sampler is configured before scoring."""

from __future__ import annotations

import pytest
import torch

from baselines.train import train_preset
from dgmbench.cli import main
from dgmbench.errors import UsageError
from dgmbench.protocol import load_model
from dgmbench.results import RecordStore
from dgmbench.sampling import apply_sampling_options, parse_sampling_options


def test_parse_values_as_json_scalars_else_words():
    opts = parse_sampling_options(["sampler=ddim,steps=50", "eta=0.5", "denoise=false", "guidance=2"])
    assert opts == {"sampler": "ddim", "steps": 50, "eta": 0.5, "denoise": False, "guidance": 2}
    assert isinstance(opts["steps"], int) and isinstance(opts["eta"], float)
    assert parse_sampling_options(None) == {}


@pytest.mark.parametrize("bad", ["steps", "=3", "steps=", "steps=1,steps=2", "x=[1,2]"])
def test_parse_rejects_malformed_pairs(bad):
    with pytest.raises(UsageError):
        parse_sampling_options([bad])


@pytest.fixture(scope="module")
def diffusion_ckpt(tmp_path_factory):
    ckpt = str(tmp_path_factory.mktemp("sampling") / "diffusion.pt")
    train_preset("diffusion", "digits-tiny", checkpoint=ckpt, progress=False, overrides={"train": {"steps": 2}})
    return ckpt


def test_apply_checks_names_and_changes_the_sampler(diffusion_ckpt):
    model = load_model(diffusion_ckpt)
    guided = 2 if model.guided else 1
    apply_sampling_options(model, {"sampler": "ddim", "steps": 7})
    assert model.sampler == "ddim" and model.nfe_per_sample == 7 * guided
    with pytest.raises(UsageError, match="unknown sampling option.*it takes: sampler, steps, eta, guidance"):
        apply_sampling_options(model, {"temperature": 0.9})
    with pytest.raises(UsageError, match="steps must be between 1 and T"):  # the model's own check
        apply_sampling_options(model, {"steps": 10**6})
    with pytest.raises(UsageError, match="takes no sampling options"):
        apply_sampling_options(torch.nn.Linear(2, 2), {"steps": 3})


def test_cli_sampling_changes_samples_and_nfe_and_is_recorded(tmp_path, monkeypatch, diffusion_ckpt):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    store = str(tmp_path / "r.jsonl")
    common = ["score", "--model", diffusion_ckpt, "--dataset", "digits", "-n", "70", "--metrics", "fid,speed",
              "--device", "cpu", "--fid-bootstrap", "0", "--no-progress", "--store", store]
    assert main(common + ["--sampling", "sampler=ddim,steps=4"]) == 0
    assert main(common + ["--sampling", "sampler=ddim", "--sampling", "steps=9"]) == 0
    four, nine = RecordStore(store).load()
    guided = 2 if load_model(diffusion_ckpt).guided else 1
    assert four.value("nfe") == 4 * guided and nine.value("nfe") == 9 * guided
    assert four.config["sampling_options"] == {"sampler": "ddim", "steps": 4}
    assert four.config["sampler"]["steps"] == 4 and four.config["source"] == diffusion_ckpt
    assert "[sampler=ddim,steps=4]" in four.model
    assert four.value("fid") != nine.value("fid")  # other sampler, other samples


def test_cli_sampling_errors_are_usage_errors(tmp_path, monkeypatch, diffusion_ckpt, capsys):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    rc = main(["score", "--model", diffusion_ckpt, "--dataset", "digits", "-n", "10", "--metrics", "fid",
               "--sampling", "bogus=1"])
    assert rc == 2 and "unknown sampling option(s) bogus" in capsys.readouterr().err
    x = torch.rand(20, 1, 8, 8).numpy()
    path = tmp_path / "s.npz"
    import numpy as np

    np.savez(path, x=x)
    rc = main(["score", "--samples", str(path), "--dataset", "digits", "--metrics", "fid", "--sampling", "steps=3"])
    assert rc == 2 and "does not apply to --samples" in capsys.readouterr().err


def test_format_sampling_options_parses_back_to_the_same_options():
    from dgmbench.sampling import format_sampling_options, parse_sampling_options

    opts = {"sampler": "ddim", "steps": 50, "eta": 0.5, "denoise": True, "guidance": None}
    text = format_sampling_options(opts)
    assert text == "sampler=ddim,steps=50,eta=0.5,denoise=true,guidance=null"
    assert parse_sampling_options([text]) == opts
