import os

import torch

# The Triton kernels run in Triton's CPU interpreter where there is no GPU; the variable
# must be set before triton is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def symmetric_published_filter(monkeypatch):
    """Make the published-equivalent baseline's filter tie-free (see oracle.symmetrised_energy)."""
    from asrec.baselines import published

    from .oracle import symmetrised_energy
    monkeypatch.setattr(published, "spectrum_energy", symmetrised_energy)
