"""Shared test fixtures (offline; nothing here touches the internet).

- ``repo_root``: the repository root (Path).
- ``offline_dir``: the real data for tests, ``<repo>/../shared/offline`` (see its README.md);
  tests that use it are skipped, with a message saying so, when the folder is absent.
- ``offline_server``: base URL of ``python -m http.server --bind 127.0.0.1`` serving
  ``offline_dir`` on a free port for the whole session (``<url>/mnist/<file>``,
  ``<url>/cifar10-subset/<file>``).
- ``mnist_home``: a temporary ``$DGMBENCH_HOME`` into which MNIST was prepared once per
  session through the real download-and-verify path from ``offline_server``. Requesting it
  also sets ``$DGMBENCH_HOME`` to it for the rest of the session, so
  ``get_dataset("mnist", split)`` works without arguments (and is cheap: files are verified
  and parsed once per process).
- ``serve_folder``: a factory ``serve_folder(path) -> base URL`` that serves a folder from an
  in-process HTTP server on 127.0.0.1 (for made-up or corrupted files); stopped after the test.
"""

from __future__ import annotations

import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
OFFLINE_DIR = REPO_ROOT.parent / "shared" / "offline"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def offline_dir() -> Path:
    if not (OFFLINE_DIR / "mnist").is_dir():
        pytest.skip(f"offline test data not found at {OFFLINE_DIR} (the shared/offline folder next to the repository)")
    return OFFLINE_DIR


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def offline_server(offline_dir):
    """Base URL (no trailing slash) of ``python -m http.server`` serving ``offline_dir``."""
    for _ in range(3):  # another process may grab the port between free_port() and bind
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(offline_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if _wait_listening(port, proc):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail("could not start python -m http.server on 127.0.0.1")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def mnist_home(offline_server, tmp_path_factory):
    """A DGMBENCH_HOME holding verified MNIST (downloaded from ``offline_server``); sets $DGMBENCH_HOME."""
    from dgmbench.data.idx import prepare

    home = tmp_path_factory.mktemp("dgmbench_home")
    prepare("mnist", home=home, mirror=offline_server, progress=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("DGMBENCH_HOME", str(home))
    yield home
    mp.undo()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def start_http_server(handler_factory) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start ``handler_factory`` on a free 127.0.0.1 port in a daemon thread; return (server, base URL)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_factory)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def serve_folder():
    """Factory: ``serve_folder(path) -> base URL`` serving ``path`` until the test ends."""
    servers = []

    def serve(path: str | os.PathLike) -> str:
        server, url = start_http_server(functools.partial(_QuietHandler, directory=os.fspath(path)))
        servers.append(server)
        return url

    yield serve
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module: tiny models run faster on one thread, are immune
    to a busy machine, and a fixed thread count keeps float results fixed; restored after."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def offline_inception_home(tmp_path_factory, name: str):
    """A fresh DGMBENCH_HOME and TORCH_HOME under a temporary folder, with downloads off; yields the
    folder and restores the environment after (for module-scoped Inception fixtures)."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp(name)
    mp.setenv("DGMBENCH_HOME", str(home / "dgmbench"))
    mp.setenv("TORCH_HOME", str(home / "torch"))
    mp.setenv("DGMBENCH_OFFLINE", "1")
    yield home
    mp.undo()


@pytest.fixture(scope="module")
def cifar3(offline_dir) -> torch.Tensor:
    """3 real CIFAR-10 test images as float [0, 1] (3, 3, 32, 32) on the 8-bit grid."""
    with np.load(offline_dir / "cifar10-subset" / "cifar10_test_first1000.npz") as z:
        data = z["data"][:3]
    return torch.from_numpy(data.reshape(3, 3, 32, 32)).float() / 255.0
