"""flexkv check on a good setup and on broken ones (bad configuration, an SSD directory that
cannot be used, a CPU pool too large, a persistent cache of another model): the expected verdict
per check, the fix, and exit code 1 exactly when a check fails."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_support import flexkv, flexkv_json

REDIS_DOWN = "redis://127.0.0.1:9"  # the discard port: nothing listens there


def write_config(tmp_path: Path, **keys) -> Path:
    doc = {"num_cpu_blocks": 64, "block_bytes": 4096, "tokens_per_block": 16, "use_hugepage_cpu_buffer": False,
           "ssd_cache_gb": 0.01, "ssd_cache_dir": str(tmp_path / "ssd"), **keys}
    path = tmp_path / "flexkv.json"
    path.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))
    return path


def by_name(doc: dict, name: str) -> list:
    return [c for c in doc["checks"] if c["name"] == name]


def statuses(doc: dict, name: str) -> set:
    return {c["status"] for c in by_name(doc, name)}


def test_a_good_setup_passes(tmp_path):
    (tmp_path / "ssd").mkdir()
    doc = flexkv_json("check", "--config", write_config(tmp_path))
    assert doc["ok"] and doc["failed"] == 0
    for name in ("glibc", "cpu", "library", "config", "engine", "memory"):
        assert statuses(doc, name) == {"ok"}, by_name(doc, name)
    ssd = " ".join(c["message"] for c in by_name(doc, "ssd"))
    assert "writable directory of this user" in ssd and "needed" in ssd and "holds no persistent cache" in ssd
    assert statuses(doc, "remote") == {"skip"} and statuses(doc, "cuda") == {"skip"}


def test_text_output_has_one_line_per_check_and_no_colour_when_piped(tmp_path):
    out = flexkv("check", "--config", write_config(tmp_path, ssd_cache_gb=None))
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and lines[-1].startswith("ready: 0 failed")
    assert all(line.split()[0] in ("ok", "warn", "fail", "skip") for line in lines[:-1])
    assert "\033[" not in out.stdout


def test_a_bad_configuration_fails_naming_the_key(tmp_path):
    path = write_config(tmp_path, cpu_cache_gbb=4)
    doc = flexkv_json("check", "--config", path, expect=1)
    (c,) = by_name(doc, "config")
    assert c["status"] == "fail" and "cpu_cache_gbb" in c["message"] and "did you mean 'cpu_cache_gb'" in c["message"]
    bad_value = write_config(tmp_path, tokens_per_block=0)
    assert statuses(flexkv_json("check", "--config", bad_value, expect=1), "config") == {"fail"}


def test_flexkv_keys_are_understood_and_no_effect_keys_warned(tmp_path):
    path = tmp_path / "flexkv.yml"
    path.write_text("cache_config:\n  enable_ssd: false\n  evict_ratio: 0.05\n  num_cpu_blocks: 64\n"
                    "  block_bytes: 4096\n  use_hugepage_cpu_buffer: false\n")
    doc = flexkv_json("check", "--config", path)
    msgs = [c for c in by_name(doc, "config")]
    assert msgs[0]["status"] == "ok" and "FlexKV sections: cache_config" in msgs[0]["message"]
    assert "FlexKV keys understood: enable_ssd, evict_ratio" in msgs[0]["message"]
    assert any(c["status"] == "warn" and "evict_ratio" in c["message"] for c in msgs)


def test_an_ssd_directory_that_cannot_be_created_fails(tmp_path):
    (tmp_path / "file").write_text("a file, not a directory")
    doc = flexkv_json("check", "--config", write_config(tmp_path, ssd_cache_dir=str(tmp_path / "file" / "ssd")), expect=1)
    (c,) = [c for c in by_name(doc, "ssd") if c["status"] == "fail"]
    assert "cannot be created" in c["message"] and c["fix"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_an_ssd_directory_of_another_user_fails(tmp_path):
    d = tmp_path / "ssd"
    d.mkdir()
    os.chown(d, 65534, 65534)
    doc = flexkv_json("check", "--config", write_config(tmp_path), expect=1)
    assert any(c["status"] == "fail" and "belongs to uid 65534" in c["message"] for c in by_name(doc, "ssd"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_ssd_directory_fails(tmp_path):
    d = tmp_path / "ssd"
    d.mkdir()
    d.chmod(0o500)
    try:
        doc = flexkv_json("check", "--config", write_config(tmp_path), expect=1)
        assert any(c["status"] == "fail" and "not writable" in c["message"] for c in by_name(doc, "ssd"))
    finally:
        d.chmod(0o700)


def test_not_enough_free_space_fails(tmp_path):
    (tmp_path / "ssd").mkdir()
    st = os.statvfs(tmp_path)
    free_gb = st.f_bavail * st.f_frsize / (1 << 30)
    doc = flexkv_json("check", "--config", write_config(tmp_path, ssd_cache_gb=free_gb * 2 + 1), expect=1)
    assert any(c["status"] == "fail" and "are free" in c["message"] for c in by_name(doc, "ssd"))


def _takes_o_direct(directory: Path) -> bool:
    """Whether the kernel lets this directory's filesystem open files with O_DIRECT (tmpfs does
    since Linux 6.6, so the answer depends on the machine)."""
    import errno
    import mmap

    probe = directory / "probe"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
        try:
            os.write(fd, mmap.mmap(-1, 4096))
        finally:
            os.close(fd)
        return True
    except OSError as e:
        assert e.errno == errno.EINVAL
        return False
    finally:
        probe.unlink(missing_ok=True)


def test_o_direct_support_is_probed(tmp_path):
    (tmp_path / "ssd").mkdir()
    doc = flexkv_json("check", "--config", write_config(tmp_path))
    direct = [c for c in by_name(doc, "ssd") if "O_DIRECT" in c["message"]]
    assert [c["status"] for c in direct] == ["ok" if _takes_o_direct(tmp_path / "ssd") else "warn"]


def test_a_filesystem_without_o_direct_is_a_warning_with_the_fix(tmp_path, monkeypatch):
    import errno

    from flexkv.cli.checks import ssd

    real_open = os.open

    def no_direct(path, flags, *rest):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *rest)

    monkeypatch.setattr(os, "open", no_direct)
    out = []
    ssd._direct(str(tmp_path), None, out)
    (c,) = out
    assert c.status == "warn" and "does not support O_DIRECT" in c.message and "ssd_direct_io" in c.fix
    assert os.listdir(tmp_path) == []  # the probe file is gone


def test_a_cpu_pool_larger_than_memory_fails(tmp_path):
    doc = flexkv_json("check", "--config", write_config(tmp_path, num_cpu_blocks=None, cpu_cache_gb=1 << 20,
                                                        ssd_cache_gb=None), expect=1)
    (c,) = by_name(doc, "memory")
    assert c["status"] == "fail" and "the engine refuses to start" in c["message"] and "lower cpu_cache_gb" in c["fix"]


def test_a_persistent_cache_is_reported_with_the_verdict_for_this_configuration(tmp_path):
    import ctypes

    import flexkv as fk

    path = write_config(tmp_path)
    cfg = json.loads(path.read_text())
    host = (ctypes.c_uint8 * (4096 * 8))()
    with fk.KVManager(cfg) as m:
        m.register_kv_caches([fk.KVLayer(ctypes.addressof(host), 4096, 4096)], 8)
        assert m.put("a", list(range(16 * 3 + 1)), [0, 1, 2, 3])
        for _ in range(500):
            if m.stats()["ssd_blocks_used"] == 3 and m.stats()["ssd_writes_pending"] == 0:
                break
            m.wait(0.01)
    doc = flexkv_json("check", "--config", path)
    assert any(c["status"] == "ok" and "3 blocks" in c["message"] and "reuses it" in c["message"]
               for c in by_name(doc, "ssd"))
    other = write_config(tmp_path, model_name="another-model")
    doc = flexkv_json("check", "--config", other)
    assert any(c["status"] == "warn" and "discards" in c["message"] for c in by_name(doc, "ssd"))
