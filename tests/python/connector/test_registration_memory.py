"""Which memory a registration may describe: the engine writes loaded blocks into it with
process_vm_writev, so every layer's extent over all blocks must lie in anonymous or shared
writable memory of the registering process (malloc'd, mmap'd, /dev/shm, memfd), never in a
file's mapping such as a library's code or data (writing there crashed the scheduler). CUDA
registrations carry device pointers, which /proc/PID/maps cannot vouch for: they skip this."""

from __future__ import annotations

import ctypes
import os

import pytest

from flexkv import _native
from flexkv.integration.vllm import _process_memory
from flexkv.integration.vllm._registration import RegistrationServer

from .registration_support import RecordingEngine, register

MAPS = """\
00400000-00401000 r-xp 00000000 fe:00 1     /usr/bin/python3
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 
7f0000100000-7f0000200000 rw-p 00000000 00:00 0 
7f0000200000-7f0000300000 rw-s 00000000 00:01 5     /dev/shm/kv cache (deleted)
7f0000300000-7f0000400000 rw-p 00000000 00:00 0     [heap]
7f0000500000-7f0000600000 rw-p 00001000 fe:00 7     /usr/lib/libflexkv.so
7f0000600000-7f0000700000 r--p 00000000 00:00 0 
7f0000700000-7f0000800000 rw-s 00000000 00:01 9     /memfd:kv (deleted)
7ffd00000000-7ffd00100000 rw-p 00000000 00:00 0     [stack]
"""


def problem(lo: int, size: int):
    return _process_memory.problem(_process_memory.parse(MAPS), lo, size)


def test_ranges_over_adjacent_anonymous_and_shared_mappings_are_accepted():
    assert problem(0x7F0000000000, 0x100) is None
    assert problem(0x7F00000F0000, 0x20000) is None  # one allocation split in two mappings (THP, mprotect)
    assert problem(0x7F0000000000, 0x400000) is None  # anonymous, /dev/shm (a path with a space) and the heap
    assert problem(0x7F0000700010, 0x1000) is None  # a memfd


@pytest.mark.parametrize("lo, size, why", [
    (0x7F00003FF000, 0x2000, "is not mapped at 0x7f0000400000"),
    (0x1000, 16, "is not mapped at 0x1000"),
    (0x7F0000500100, 64, "is in a mapping of the file /usr/lib/libflexkv.so"),
    (0x7F00000FF000, 0x800000, "is not mapped at 0x7f0000400000"),
    (0x7F0000600000, 8, "is in a mapping that is not writable (r--p)"),
    (0x400010, 8, "is in a mapping of the file /usr/bin/python3"),
    (0x7FFD00000100, 8, "is in [stack]"),
    (2 ** 64 - 8, 16, "ends past the top of the address space"),
])
def test_ranges_outside_private_writable_memory_say_why(lo, size, why):
    assert problem(lo, size) == why


def mapping_of(path_part: str, perms: str):
    for line in open("/proc/self/maps"):
        f = line.split(maxsplit=5)
        if len(f) == 6 and path_part in f[5] and f[1].startswith(perms):
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            return lo, hi, f[5].strip()
    pytest.skip(f"no {perms} mapping of {path_part} in this process")


@pytest.fixture
def server(tmp_path):
    engine = RecordingEngine(2)
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, engine)
    yield srv, engine
    srv.close()


def refusal(srv, layer, **kw) -> str:
    s, reply = register(srv.path, 0, layers=[layer], **kw)
    s.close()
    assert reply["ok"] is False, reply
    return reply["error"]


def test_the_engines_own_library_cannot_be_registered(server):
    srv, engine = server
    _native.lib()  # libflexkv.so mapped into this process, as in the scheduler
    for perms in ("rw", "r-x"):
        lo, hi, path = mapping_of("libflexkv.so", perms)
        err = refusal(srv, [lo, 256, 128, 128, 2])
        assert f"layer 0 ({7 * 256 + 256} bytes at {lo:#x}) is in a mapping of the file {path}" in err
        assert f"process {os.getpid()}" in err
    assert engine.calls == []


def libc():
    lib = ctypes.CDLL(None, use_errno=True)
    lib.mmap.restype = ctypes.c_void_p
    lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return lib


def test_unmapped_read_only_and_overrunning_ranges_are_refused(server):
    srv, engine = server
    lib, page = libc(), os.sysconf("SC_PAGE_SIZE")
    ro = lib.mmap(None, 4 * page, 1, 0x22, -1, 0)  # PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS
    rw = lib.mmap(None, 4 * page, 3, 0x22, -1, 0)  # PROT_READ | PROT_WRITE
    assert ro not in (None, 2 ** 64 - 1) and rw not in (None, 2 ** 64 - 1)
    lib.munmap(rw, page)  # holes right before and right after two writable pages
    lib.munmap(rw + 3 * page, page)
    first, end = rw + page, rw + 3 * page
    try:
        assert "is not mapped at 0x1000" in refusal(srv, [0x1000, 256, 128, 128, 2])
        assert "is in a mapping that is not writable (r--p)" in refusal(srv, [ro, 256, 128, 128, 2])
        assert f"is not mapped at {end:#x}" in refusal(srv, [end - 1024, 256, 128, 128, 2])
        # kv_stride < 0: the V spans start 1 KiB below base, 512 bytes before the writable pages;
        # the extent runs from there to the end of block 7's K span (7 x 256 + 128 bytes after base).
        err = refusal(srv, [first + 512, 256, 128, -1024, 2])
        assert f"(2944 bytes at {first - 512:#x}) is not mapped at {first - 512:#x}" in err
        assert "a KV cache must be in anonymous or shared writable memory" in err
        assert engine.calls == []
        s, reply = register(srv.path, 0, layers=[[first, 256, 128, 128, 2]])  # inside the two pages
        assert reply["ok"] is True
        s.close()
    finally:
        lib.munmap(ro, 4 * page)
        lib.munmap(first, 2 * page)


def test_cuda_registrations_skip_the_memory_map_but_not_the_pid_checks(server):
    srv, engine = server
    ipc = [["ab" * 64, 0, "0000:3b:00.0"]]
    s, reply = register(srv.path, 0, memory="cuda", cuda_ipc=ipc, layers=[[0x7000_0000_0000, 256, 128, 128, 2]])
    assert reply["ok"] is True and engine.ranks == {0: os.getpid()}
    s.close()
    err = refusal(srv, [0x7000_0000_0000, 256, 128, 128, 2], memory="cuda", cuda_ipc=ipc, pid=os.getppid())
    assert "the connection comes from pid" in err
