"""Where torch models run: CUDA when available, else CPU with a sensible thread count."""

from __future__ import annotations

import os
from typing import Literal

DeviceChoice = Literal["auto", "cpu", "cuda"]


def cpu_count() -> int:
    """CPU cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def cpu_threads() -> int:
    """Torch threads for CPU work: ``$SMO_IMPACT_TORCH_THREADS``, else the usable cores.

    On a CPU shared with other busy processes, fewer threads are much faster (OpenMP threads
    spin waiting for each other: a tiny-BERT step measured 7x slower with 2 threads than with 1
    on a loaded 2-core machine); set ``SMO_IMPACT_TORCH_THREADS=1`` there. The count is fixed
    rather than read from the load, so that runs stay reproducible.
    """
    value = os.environ.get("SMO_IMPACT_TORCH_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            from smo_impact.errors import ConfigError

            raise ConfigError(f"SMO_IMPACT_TORCH_THREADS must be a positive integer, got {value!r}")
        return int(value)
    return cpu_count()


def select_device(choice: DeviceChoice = "auto"):  # -> torch.device
    """The torch device for ``choice``; ``auto`` picks CUDA when available.

    On CPU, torch's intra-op threads are set by :func:`cpu_threads` unless the user set
    ``OMP_NUM_THREADS`` (torch's default can exceed the affinity mask in containers).
    """
    import torch

    from smo_impact.errors import ConfigError

    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("model.params.device: 'cuda' was requested but no CUDA device is available; use 'auto' or 'cpu'")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    threads = cpu_threads()
    if ("OMP_NUM_THREADS" not in os.environ or "SMO_IMPACT_TORCH_THREADS" in os.environ) and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.device("cpu")
