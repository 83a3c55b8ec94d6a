"""``dgmbench datasets list | info | prepare`` through dgmbench.cli.main, with exit codes."""

from __future__ import annotations

import json

import pytest
from conftest import free_port

from dgmbench.cli import main
from dgmbench.errors import EXIT_DATA, EXIT_OK, EXIT_USAGE


def test_list_text_and_json(capsys):
    assert main(["datasets", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("digits", "ring8", "grid25", "mnist", "fashion-mnist", "cifar10", "folder:PATH"):
        assert name in out
    assert main(["--json", "datasets", "list"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["cifar10"]["shape"] == "3x32x32" and by_name["mnist"]["source"] == "download"


def test_info_embedded_and_toy(capsys):
    assert main(["--json", "datasets", "info", "digits"]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["splits"] == {"train": 1437, "test": 360} and info["num_classes"] == 10 and info["shape"] == [1, 8, 8]
    assert main(["datasets", "info", "ring8"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "'train': 20000" in out and "points" in out


def test_info_mnist_from_data_dir(capsys, offline_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path))
    assert main(["--json", "datasets", "info", "mnist", "--data-dir", str(offline_dir)]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["splits"] == {"train": 60000, "test": 10000} and info["class_names"][0] == "zero"


def test_unknown_name_is_usage_error_with_suggestion(capsys):
    assert main(["datasets", "info", "mnsit"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("dgmbench datasets: error: unknown dataset 'mnsit'; did you mean 'mnist'")
    assert err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:  # argparse: a missing action
        main(["datasets"])
    assert exc.value.code == EXIT_USAGE


def test_prepare_from_mirror_then_offline_error(capsys, offline_server, tmp_path, monkeypatch):
    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DGMBENCH_DATA_DIR", raising=False)
    assert main(["--json", "datasets", "prepare", "mnist", "--mirror", offline_server]) == EXIT_OK
    files = json.loads(capsys.readouterr().out)["files"]
    assert sorted(f.rsplit("/", 1)[1] for f in files) == sorted(
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    )
    assert all(f.startswith(str(tmp_path / "home" / "datasets" / "mnist")) for f in files)

    monkeypatch.setenv("DGMBENCH_HOME", str(tmp_path / "empty"))
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["datasets", "prepare", "mnist", "--mirror", dead]) == EXIT_DATA
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{dead}/mnist/train-images-idx3-ubyte.gz" in err
    assert "6bbc9ace898e44ae57da46a324031adb" in err and "--data-dir" in err


def test_prepare_embedded_is_a_no_op(capsys):
    assert main(["datasets", "prepare", "digits"]) == EXIT_OK
    assert "nothing to download" in capsys.readouterr().out
