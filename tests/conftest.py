import pytest
import torch


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
