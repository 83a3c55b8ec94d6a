"""Model protocol adapters: CallableModel, SamplesModel, load_model (import string + checkpoint)."""

from __future__ import annotations

import textwrap
import uuid

import numpy as np
import pytest
import torch

from dgmbench.errors import DataError, ModelError, UsageError
from dgmbench.protocol import (
    CallableModel,
    GenerativeModel,
    SamplesModel,
    as_generative_model,
    likelihood_kind,
    load_model,
)


def test_callable_model_batches_seeds_and_labels():
    calls = []

    def fn(z, labels=None):
        calls.append((z.clone(), None if labels is None else labels.clone()))
        return torch.sigmoid(z).view(-1, 1, 2, 2)

    m = CallableModel(fn, (4,), (1, 2, 2), batch_size=3, num_classes=2)
    assert isinstance(m, GenerativeModel)
    x = m.sample(7, generator=torch.Generator().manual_seed(0))
    assert x.shape == (7, 1, 2, 2) and [c[0].shape[0] for c in calls] == [3, 3, 1]
    z = torch.cat([c[0] for c in calls])
    # outputs are fn(z), in order (to an ulp: the vectorised sigmoid's tail path differs with the batch size)
    torch.testing.assert_close(x, torch.sigmoid(z).view(-1, 1, 2, 2), rtol=1e-6, atol=0)
    assert abs(float(z.mean())) < 1.0 and calls[0][1] is None
    again = m.sample(7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)  # same seed, same samples
    assert not torch.equal(x, m.sample(7, generator=torch.Generator().manual_seed(1)))
    calls.clear()
    labels = torch.tensor([0, 1, 1, 0, 1])
    m.sample(5, generator=torch.Generator().manual_seed(0), labels=labels)
    assert torch.equal(torch.cat([c[1] for c in calls]), labels)  # labels follow their samples


def test_samples_model_replays_and_refuses_more():
    data = torch.rand(5, 1, 3, 3)
    m = SamplesModel(data, torch.tensor([0, 2, 1, 2, 0]), source="gen.npz")
    assert isinstance(m, GenerativeModel) and m.num_classes == 3 and m.data_shape == (1, 3, 3)
    assert torch.equal(m.sample(3), data[:3])
    with pytest.raises(DataError) as exc:
        m.sample(6)
    assert "gen.npz holds only 5 samples but 6 were requested" in str(exc.value)
    with pytest.raises(UsageError, match="cannot condition on labels"):
        m.sample(2, labels=torch.tensor([0, 1]))
    assert likelihood_kind(m) == "none"


def test_samples_model_from_path(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (4, 5, 5, 3), dtype=np.uint8)
    np.savez(tmp_path / "gen.npz", images=x)
    m = SamplesModel.from_path(tmp_path / "gen.npz")
    assert m.data_shape == (3, 5, 5) and len(m) == 4 and m.num_classes is None
    with pytest.raises(DataError, match="holds only 4 samples but 10"):
        m.sample(10)


TINY_MODULE = '''
import torch

class TinyGen(torch.nn.Module):
    """Gaussian around a learned shift; exact log-likelihood in nats."""
    data_shape = (2,)
    num_classes = None
    nfe_per_sample = 1.0
    likelihood_kind = "exact"

    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.zeros(2))

    def sample(self, n, *, generator=None, labels=None):
        return torch.randn(n, 2, generator=generator) * 0.1 + self.shift.detach()

    def log_likelihood(self, x):
        d = (x - self.shift) / 0.1
        return -0.5 * (d ** 2).sum(1) - 2 * torch.log(torch.tensor(0.1)) - torch.log(torch.tensor(2 * torch.pi)), "exact"

def build(checkpoint=None):
    m = TinyGen()
    if checkpoint is not None:
        m.load_state_dict(torch.load(checkpoint, weights_only=True))
    return m.eval()

class Decoder(torch.nn.Module):
    latent_shape = (3,)
    data_shape = (1, 2, 2)
    def forward(self, z):
        return torch.sigmoid(z.sum(1, keepdim=True)).expand(-1, 4).reshape(-1, 1, 2, 2)

def decoder():
    return Decoder()

def not_a_model():
    return 42
'''


@pytest.fixture
def tiny_module(tmp_path, monkeypatch):
    name = f"tiny_gen_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(TINY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_load_model_import_string_with_checkpoint(tiny_module, tmp_path):
    ckpt = tmp_path / "tiny.pt"
    torch.save({"shift": torch.tensor([3.0, -1.0])}, ckpt)
    m = load_model(f"{tiny_module}:build", str(ckpt))
    assert isinstance(m, GenerativeModel) and likelihood_kind(m) == "exact"
    x = m.sample(4000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x.mean(0), torch.tensor([3.0, -1.0]), atol=0.01)
    # log-likelihood at the mean: the closed form -log(2 pi sigma^2) for a 2-D isotropic Gaussian
    ll, kind = m.log_likelihood(torch.tensor([[3.0, -1.0]]))
    assert kind == "exact" and float(ll.detach()) == pytest.approx(-np.log(2 * np.pi * 0.01), rel=1e-6)
    plain = load_model(f"{tiny_module}:build")  # no checkpoint: factory()
    assert torch.allclose(plain.sample(4000, generator=torch.Generator().manual_seed(0)).mean(0), torch.zeros(2), atol=0.01)


def test_load_model_wraps_a_decoder(tiny_module):
    m = load_model(f"{tiny_module}:decoder")
    assert isinstance(m, CallableModel) and m.latent_shape == (3,) and m.data_shape == (1, 2, 2)
    x = m.sample(5, generator=torch.Generator().manual_seed(0))
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x[:, 0, 0, 0], torch.sigmoid(z.sum(1)))


def test_load_model_errors(tiny_module, tmp_path):
    with pytest.raises(UsageError, match="must look like 'package.module:factory'"):
        load_model("no_colon_here")
    with pytest.raises(ModelError, match="cannot import module 'surely_missing_mod_xyz'"):
        load_model("surely_missing_mod_xyz:build")
    with pytest.raises(ModelError, match="has no attribute 'nope'"):
        load_model(f"{tiny_module}:nope")
    with pytest.raises(ModelError, match="checkpoint .*missing.pt does not exist"):
        load_model(f"{tiny_module}:build", str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=f"model factory '{tiny_module}:build' on checkpoint .*bad.pt raised UnpicklingError"):
        load_model(f"{tiny_module}:build", str(bad))
    with pytest.raises(ModelError, match="not a dgmbench baseline checkpoint"):
        load_model(str(bad))
    with pytest.raises(ModelError, match="cannot use a int as a generative model"):
        load_model(f"{tiny_module}:not_a_model")


def test_as_generative_model_fills_defaults_and_rejects_bare_callables():
    class S:
        data_shape = (2,)

        def sample(self, n, *, generator=None, labels=None):
            return torch.zeros(n, 2)

    m = as_generative_model(S())
    assert m.num_classes is None and m.nfe_per_sample == 1.0 and isinstance(m, GenerativeModel)
    with pytest.raises(ModelError, match="give it 'latent_shape' and 'data_shape'"):
        as_generative_model(lambda z: z)
    wrapped = as_generative_model(lambda z: z, data_shape=(2,), latent_shape=(2,))
    assert wrapped.sample(3).shape == (3, 2)
