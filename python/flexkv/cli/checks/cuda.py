"""With --cuda: the NVIDIA driver as the engine will use it (libcuda.so.1 through ctypes, as the
engine loads it): driver version, GPUs, and whether the batched copy cuMemcpyBatchAsync (CUDA
12.8+) is there. Without a driver it says so in one line."""

from __future__ import annotations

import ctypes
from typing import List

from . import FAIL, OK, WARN, Result

LIBCUDA = "libcuda.so.1"


def _error(cuda, rc: int) -> str:
    text = ctypes.c_char_p()
    try:
        cuda.cuGetErrorString(rc, ctypes.byref(text))
    except AttributeError:
        pass
    return f"{text.value.decode() if text.value else 'error'} ({rc})"


def check(libcuda: str = LIBCUDA) -> List[Result]:
    try:
        cuda = ctypes.CDLL(libcuda)
    except OSError as e:
        return [Result("cuda", FAIL, f"{libcuda} cannot be loaded ({e}): no NVIDIA driver here",
                       "install the NVIDIA driver (FlexKv needs no CUDA toolkit, only the driver)")]
    rc = cuda.cuInit(0)
    if rc != 0:
        return [Result("cuda", FAIL, f"{libcuda} loads but cuInit fails: {_error(cuda, rc)}",
                       "check nvidia-smi; in a container, expose the GPUs (--gpus all)")]
    version = ctypes.c_int()
    cuda.cuDriverGetVersion(ctypes.byref(version))
    v = version.value
    out = [Result("cuda", OK, f"{libcuda}: driver API {v // 1000}.{v % 1000 // 10}")]
    count = ctypes.c_int()
    cuda.cuDeviceGetCount(ctypes.byref(count))
    if count.value == 0:
        out.append(Result("gpu", FAIL, "the driver sees no GPU", "check nvidia-smi and CUDA_VISIBLE_DEVICES"))
    for i in range(count.value):
        dev = ctypes.c_int()
        cuda.cuDeviceGet(ctypes.byref(dev), i)
        name = ctypes.create_string_buffer(256)
        cuda.cuDeviceGetName(name, len(name), dev)
        mem = ctypes.c_size_t()
        cuda.cuDeviceTotalMem_v2(ctypes.byref(mem), dev)
        bus = ctypes.create_string_buffer(32)
        cuda.cuDeviceGetPCIBusId(bus, len(bus), dev)
        out.append(Result("gpu", OK, f"GPU {i}: {name.value.decode()}, {mem.value / (1 << 30):.0f} GiB, "
                                     f"PCI {bus.value.decode()}"))
    if hasattr(cuda, "cuMemcpyBatchAsync"):
        out.append(Result("cuda", OK, "cuMemcpyBatchAsync is available: each batch of blocks is one driver call"))
    else:
        out.append(Result("cuda", WARN, "cuMemcpyBatchAsync is not in this driver (before CUDA 12.8): one copy per "
                          "block span, slower for small blocks", "update the NVIDIA driver to CUDA 12.8 or newer"))
    return out
