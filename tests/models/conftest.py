"""Model tests run torch on one thread: the CI machine's 2 cores are shared, and oversubscribed
OpenMP threads make tiny models several times slower (see smo_impact.models.device)."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch):
    monkeypatch.setenv("SMO_IMPACT_TORCH_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
