"""The CUDA copy path is in the library and fails cleanly on a machine without a GPU or driver."""

from __future__ import annotations

import ctypes

import pytest

import flexkv


def has_cuda_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


@pytest.mark.skipif(has_cuda_driver(), reason="this machine has a CUDA driver: benchmarks/gpu_check.py covers it")
def test_cuda_registration_without_a_driver_is_not_supported_and_the_engine_keeps_working():
    with flexkv.KVManager(num_cpu_blocks=8, block_bytes=4096, use_hugepage_cpu_buffer=False) as m:
        with pytest.raises(flexkv.NotSupportedError, match="libcuda.so.1"):
            m.register_kv_caches([flexkv.KVLayer(0x7F0000000000, 4096, 4096)], 16, cuda_device=0)
        host = (ctypes.c_uint8 * (16 * 4096))()
        m.register_kv_caches([flexkv.KVLayer(ctypes.addressof(host), 4096, 4096)], 16)
        assert m.put("r", list(range(33)), [0, 1])
        assert m.stats()["blocks_saved"] == 2


def test_gpu_check_script_refuses_cleanly_without_a_gpu():
    import subprocess
    import sys

    from conftest import REPO

    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                         timeout=120)
    if out.returncode == 0:
        pytest.skip("this machine has a GPU")
    assert "needs a CUDA GPU" in out.stderr or "needs PyTorch" in out.stderr


def test_cuda_ipc_export_checks_its_input_and_needs_a_driver():
    from flexkv import cuda_ipc

    with pytest.raises(flexkv.InvalidArgumentError, match="null"):
        cuda_ipc.export(0)
    host = (ctypes.c_uint8 * 64)()
    # A host pointer is never shareable: without a driver that is what is missing, with one the pointer is refused.
    err = flexkv.NotSupportedError if not has_cuda_driver() else flexkv.InvalidArgumentError
    with pytest.raises(err, match="libcuda.so.1" if err is flexkv.NotSupportedError else "not CUDA device memory"):
        cuda_ipc.export(ctypes.addressof(host))


def test_cuda_ipc_handles_survive_the_json_of_the_registration_socket():
    from flexkv.cuda_ipc import CudaIpcHandle, to_native

    h = CudaIpcHandle(bytes(range(64)), 4096, "0000:3b:00.0")
    back = CudaIpcHandle.from_json(h.to_json())
    assert back == h
    arr = to_native([back])
    assert bytes(arr[0].handle) == bytes(range(64)) and arr[0].offset == 4096 and arr[0].pci_bus_id == b"0000:3b:00.0"
    with pytest.raises(ValueError, match="64"):
        to_native([CudaIpcHandle(b"short", 0, "x")])


def test_cuda_batch_copy_is_an_engine_option():
    with flexkv.KVManager(num_cpu_blocks=4, block_bytes=4096, use_hugepage_cpu_buffer=False, cuda_batch_copy=False) as m:
        assert m.config["cuda_batch_copy"] is False
    with pytest.raises(flexkv.ConfigError, match="cuda_batch_copy"):
        flexkv.KVManager(num_cpu_blocks=4, block_bytes=4096, cuda_batch_copy="sometimes")
