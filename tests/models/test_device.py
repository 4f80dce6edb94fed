import pytest
import torch

from smo_impact.errors import ConfigError
from smo_impact.models.device import cpu_threads, select_device


def test_cpu_threads_follow_the_environment(monkeypatch):
    monkeypatch.setenv("SMO_IMPACT_TORCH_THREADS", "1")
    assert select_device("cpu").type == "cpu" and torch.get_num_threads() == 1
    monkeypatch.setenv("SMO_IMPACT_TORCH_THREADS", "two")
    with pytest.raises(ConfigError, match="SMO_IMPACT_TORCH_THREADS must be a positive integer, got 'two'"):
        cpu_threads()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_a_gpu_is_a_clear_error():
    assert select_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="'cuda' was requested but no CUDA device is available"):
        select_device("cuda")
