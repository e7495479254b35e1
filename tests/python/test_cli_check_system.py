"""flexkv check's machine checks: ptrace scope for TP workers' host memory, the NVIDIA driver
(absent here, or a fake libcuda built for the test), the lock holder of a cache directory, and
whether vLLM resolves FlexKVConnectorV1 to this package (the connector tests' stub vLLM)."""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import subprocess

import pytest
from cli_support import flexkv_json

from conftest import REPO
from flexkv.cli import _locks
from flexkv.cli.checks import cuda, ptrace

STUB_VLLM = REPO / "tests" / "python" / "connector" / "stubs"


def scope(tmp_path, value: str, cap_eff: str = "0000000000000000", tp: int = 2):
    f, st = tmp_path / "scope", tmp_path / "status"
    f.write_text(value + "\n")
    st.write_text(f"Name:\tx\nCapEff:\t{cap_eff}\n")
    (r,) = ptrace.check({"tp_size": tp}, scope_file=str(f), status=str(st))
    return r


def test_ptrace_scope_verdicts(tmp_path, monkeypatch):
    assert scope(tmp_path, "0").status == "ok" and "TP 2" in scope(tmp_path, "0").message
    assert scope(tmp_path, "1").status == "ok" and "child processes" in scope(tmp_path, "1").message
    assert scope(tmp_path, "2", cap_eff=f"{1 << 19:016x}").status == "ok"  # CAP_SYS_PTRACE
    monkeypatch.setattr(ptrace, "NVIDIA_DEVICE", str(tmp_path / "no-gpu"))
    r = scope(tmp_path, "2")
    assert r.status == "fail" and "sysctl kernel.yama.ptrace_scope=1" in r.fix
    assert scope(tmp_path, "3").status == "fail" and "reboot" in scope(tmp_path, "3").fix
    assert scope(tmp_path, "3", tp=1).status == "warn"  # TP 1 needs no ptrace
    (tmp_path / "gpu").write_text("")
    monkeypatch.setattr(ptrace, "NVIDIA_DEVICE", str(tmp_path / "gpu"))
    assert scope(tmp_path, "2").status == "warn"  # with a GPU the cache is most likely in GPU memory
    (r,) = ptrace.check({"tp_size": 2}, scope_file=str(tmp_path / "absent"))
    assert r.status == "ok" and "no Yama" in r.message


def test_cuda_without_a_driver_is_one_clear_failure():
    try:
        ctypes.CDLL(cuda.LIBCUDA)
        pytest.skip("this machine has an NVIDIA driver")
    except OSError:
        pass
    doc = flexkv_json("check", "--cuda", expect=1)
    (c,) = [c for c in doc["checks"] if c["name"] == "cuda"]
    assert c["status"] == "fail" and "no NVIDIA driver" in c["message"] and "install the NVIDIA driver" in c["fix"]


FAKE_LIBCUDA = r"""
#include <stddef.h>
#include <string.h>
int cuInit(unsigned f) { return 0; }
int cuDriverGetVersion(int* v) { *v = 12080; return 0; }
int cuDeviceGetCount(int* n) { *n = 2; return 0; }
int cuDeviceGet(int* d, int i) { *d = i; return 0; }
int cuDeviceGetName(char* s, int n, int d) { strncpy(s, d ? "Fake GPU B" : "Fake GPU A", n); return 0; }
int cuDeviceTotalMem_v2(size_t* b, int d) { *b = (size_t)80 << 30; return 0; }
int cuDeviceGetPCIBusId(char* s, int n, int d) { strncpy(s, d ? "0000:02:00.0" : "0000:01:00.0", n); return 0; }
#ifdef BATCH
int cuMemcpyBatchAsync(void) { return 0; }
#endif
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler for the fake driver")
@pytest.mark.parametrize("batch", [True, False])
def test_cuda_check_reads_the_driver_it_loads(tmp_path, batch):
    src, lib = tmp_path / "fake.c", tmp_path / "libcuda.so.1"
    src.write_text(FAKE_LIBCUDA)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)] + (["-DBATCH"] if batch else []), check=True)
    results = cuda.check(str(lib))
    msgs = [r.message for r in results]
    assert results[0].status == "ok" and "driver API 12.8" in msgs[0]
    assert any("GPU 1: Fake GPU B, 80 GiB, PCI 0000:02:00.0" in m for m in msgs)
    (b,) = [r for r in results if "cuMemcpyBatchAsync" in r.message]
    assert b.status == ("ok" if batch else "warn")


def test_lock_holder_is_read_from_proc_locks(tmp_path):
    f = tmp_path / "flexkv.lock"
    f.write_text("")
    assert _locks.holder(str(f)) is None
    fd = os.open(f, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert _locks.holder(str(f)) == os.getpid()
    finally:
        os.close(fd)
    assert _locks.holder(str(f)) is None
    assert _locks.holder(str(tmp_path / "absent")) is None


def vllm_checks(env):
    doc = flexkv_json("check", env={"PYTHONPATH": str(STUB_VLLM), **env})
    return [c for c in doc["checks"] if c["name"] == "vllm"], doc


def test_vllm_resolves_flexkv_connector_to_this_package():
    found, _ = vllm_checks({})
    assert found[0]["status"] == "ok" and "0.0.0-stub" in found[0]["message"]
    assert found[-1]["status"] == "ok" and "connector.FlexKVConnectorV1 of this package" in found[-1]["message"]


def test_vllm_wrapper_opt_out_is_a_warning_and_a_known_variable():
    found, doc = vllm_checks({"FLEXKV_USE_VLLM_WRAPPER": "1"})
    assert found[-1]["status"] == "warn" and "vLLM's wrapper" in found[-1]["message"]
    assert [c["status"] for c in doc["checks"] if c["name"] == "config"] == ["ok"]


def test_no_vllm_is_a_skip():
    doc = flexkv_json("check")
    found = [c for c in doc["checks"] if c["name"] == "vllm"]
    if found[0]["status"] != "skip":
        pytest.skip("vLLM is installed here")
    assert "not installed" in found[0]["message"]
