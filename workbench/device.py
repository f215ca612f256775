"""Device selection: CUDA when present, else CPU, with the GPU precision switches in one place.

``pick_device("auto")`` returns ``cuda`` when ``torch.cuda.is_available()`` and ``cpu`` otherwise;
``configure_precision(tf32=True)`` turns on TF32 matmuls / convolutions on Ampere+ GPUs (no effect on
CPU); :func:`autocast` gives a bf16 autocast context on CUDA (and a no-op context elsewhere or when
``dtype`` is float32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from workbench.errors import WorkbenchError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


class DeviceError(WorkbenchError):
    """A device or precision setting that cannot be used here."""


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` / ``None`` -> CUDA when present, else CPU; otherwise the named device, checked."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"device: must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device: {str(device)!r} requested but CUDA is not available (use 'auto' or 'cpu')")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device: must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {str(device)!r}")
    return dev


def configure_precision(tf32: bool = True) -> None:
    """Allow TF32 tensor cores for float32 matmuls and convolutions (CUDA only; harmless elsewhere)."""
    torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
    torch.backends.cudnn.allow_tf32 = bool(tf32)
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise DeviceError(f"dtype: must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


@contextlib.contextmanager
def autocast(device: torch.device, dtype: str = "float32") -> Iterator[None]:
    """bf16 autocast on CUDA when ``dtype == 'bfloat16'``; a no-op otherwise (parameters stay fp32)."""
    if dtype == "bfloat16" and device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


def describe(device: torch.device) -> str:
    """A short human description of the device (GPU name or CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
