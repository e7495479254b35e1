"""flexkv inspect on a cache the engine wrote: what it holds, read without changing a byte; a
corrupted block found by --verify, dropped by --repair, and the rest restored by the next engine."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os

import pytest
from cli_support import flexkv, flexkv_json

import flexkv as fk
from flexkv.library_info import config_summary

BS, BLOCK_BYTES, SSD_SLOTS, SEQS, BLOCKS_PER_SEQ = 16, 64, 256, 10, 4


def config(ssd_dir, **extra):
    return {"num_cpu_blocks": 64, "block_bytes": BLOCK_BYTES, "tokens_per_block": BS, "use_hugepage_cpu_buffer": False,
            "ssd_cache_gb": SSD_SLOTS * 4096 / (1 << 30), "ssd_cache_dir": str(ssd_dir), **extra}


def open_engine(ssd_dir, **extra):
    host = (ctypes.c_uint8 * (BLOCK_BYTES * 8))()
    m = fk.KVManager(config(ssd_dir, **extra))
    m.register_kv_caches([fk.KVLayer(ctypes.addressof(host), BLOCK_BYTES, BLOCK_BYTES)], 8)
    m._keep = host
    return m


def wait_ssd(m, blocks):
    for _ in range(2000):
        s = m.stats()
        if s["ssd_writes_pending"] == 0 and s["ssd_blocks_used"] >= blocks:
            return s
        m.wait(0.01)
    raise TimeoutError(m.stats())


@pytest.fixture
def cache(tmp_path):
    """A directory holding 10 sequences of 4 blocks, written through to SSD by a real engine."""
    d = tmp_path / "ssd"
    with open_engine(d) as m:
        for i in range(SEQS):
            tokens = list(range(i * 1000, i * 1000 + BS * BLOCKS_PER_SEQ + 1))
            assert m.put(f"s{i}", tokens, list(range(BLOCKS_PER_SEQ)) * 2)
        wait_ssd(m, SEQS * BLOCKS_PER_SEQ)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config(d)))
    return d, cfg


def snapshot(d):
    return {name: (hashlib.sha256((d / name).read_bytes()).hexdigest(), os.stat(d / name).st_mtime_ns)
            for name in sorted(os.listdir(d))}


def test_inspect_reports_what_the_engine_wrote(cache):
    d, cfg = cache
    s = flexkv_json("inspect", d)
    assert (s["blocks"], s["root_blocks"], s["restorable_blocks"]) == (40, 10, 40)
    assert (s["slots"], s["block_bytes"], s["slot_bytes"], s["free_slots"]) == (SSD_SLOTS, BLOCK_BYTES, 4096, 216)
    assert s["bytes"] == 40 * BLOCK_BYTES and s["in_use_by_pid"] is None
    assert s["journal"]["records"] >= 40 and s["journal"]["torn_records"] == 0
    assert s["directories"][0]["data_bytes"] == s["directories"][0]["data_expected_bytes"] == SSD_SLOTS * 4096
    assert s["fingerprint"] == config_summary(config(d))["fingerprint"]
    text = flexkv("inspect", d)
    assert text.returncode == 0 and "40 (2.5 KiB), 10 first blocks" in text.stdout and "free (no engine" in text.stdout


def test_inspect_names_the_model_and_settings_that_wrote_the_cache_never_the_secret(tmp_path):
    d = tmp_path / "ssd"
    secret = "label-secret-3f9a"
    with open_engine(d, model_name="org/model-7b", dtype="bfloat16", layout="kv_first", tp_size=2, tp_rank=1, secret=secret):
        pass
    label = (d / "flexkv-cache.json").read_text()
    assert secret not in label and os.stat(d / "flexkv-cache.json").st_mode & 0o777 == 0o600
    s = flexkv_json("inspect", d)
    f = s["fingerprint_fields"]
    assert (f["model_name"], f["dtype"], f["layout"], f["tp_rank"], f["tp_size"], f["tokens_per_block"], f["secret_set"]) == \
        ("org/model-7b", "bfloat16", "kv_first", 1, 2, BS, True)
    assert f["fingerprint"] == s["fingerprint"]
    text = flexkv("inspect", d).stdout
    assert "model org/model-7b, bfloat16 MHA" in text and "TP rank 1 of 2" in text and "secret set" in text
    assert secret not in text


def test_a_label_of_another_cache_is_not_shown(cache):
    d, _ = cache
    other = json.loads((d / "flexkv-cache.json").read_text())
    other.update(fingerprint="0" * 32, model_name="someone-else")
    os.chmod(d / "flexkv-cache.json", 0o600)
    (d / "flexkv-cache.json").write_text(json.dumps(other))
    s = flexkv_json("inspect", d)
    assert s["fingerprint_fields"] is None and "another cache" in s["fingerprint_fields_problem"]
    assert "someone-else" not in flexkv("inspect", d).stdout


def test_inspect_and_verify_change_nothing(cache):
    d, cfg = cache
    before = snapshot(d)
    assert flexkv("inspect", d, "--verify", "--config", cfg).returncode == 0
    assert snapshot(d) == before


def test_config_says_whether_the_cache_is_reused(cache, tmp_path):
    d, cfg = cache
    assert flexkv_json("inspect", d, "--config", cfg)["config"]["reused"] is True
    other = tmp_path / "other.json"
    other.write_text(json.dumps(config(d, model_name="another-model")))
    c = flexkv_json("inspect", d, "--config", other)["config"]
    assert c["reused"] is False and c["fingerprint_matches"] is False and "fingerprint differs" in c["discard_reason"]


def test_verify_finds_the_corrupted_block_and_repair_drops_it(cache):
    d, cfg = cache
    s = flexkv_json("inspect", d, "--verify")
    assert s["verify"] == {"checked_blocks": 40, "bad_blocks": 0, "bad_slots": []}
    with open(d / "flexkv-blocks.dat", "r+b") as f:  # slot 5 is the second block of a sequence
        f.seek(5 * 4096 + 3)
        byte = f.read(1)
        f.seek(5 * 4096 + 3)
        f.write(bytes([byte[0] ^ 0xFF]))
    before = snapshot(d)
    s = flexkv_json("inspect", d, "--verify", expect=1)
    assert s["verify"]["bad_blocks"] == 1 and s["verify"]["bad_slots"] == [5]
    assert snapshot(d) == before  # --verify alone never writes
    text = flexkv("inspect", d, "--verify")
    assert text.returncode == 1 and "1 bad (slots 5)" in text.stdout
    r = flexkv_json("inspect", d, "--repair")
    assert r["repair"] == {"dropped": 1}
    after = flexkv_json("inspect", d, "--verify")
    assert after["blocks"] == 39 and after["verify"]["bad_blocks"] == 0
    # The dropped block's children no longer reach a first block: the next engine drops them.
    assert after["restorable_blocks"] == 40 - BLOCKS_PER_SEQ + 1
    with open_engine(d) as m:
        assert m.stats()["ssd_restored_blocks"] == after["restorable_blocks"]


def test_a_running_engine_is_reported_and_repair_is_refused(cache):
    d, cfg = cache
    with open(d / "flexkv-blocks.dat", "r+b") as f:
        f.seek(0)
        f.write(b"\x00" * 8 if f.read(8) != b"\x00" * 8 else b"\xff" * 8)
    m = open_engine(d)
    try:
        s = flexkv_json("inspect", d)
        assert s["in_use_by_pid"] == os.getpid()
        out = flexkv("inspect", d, "--repair")
        assert out.returncode == 1 and "in use by process" in out.stderr
    finally:
        m.close()


def test_directories_without_a_cache(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = flexkv("inspect", empty)
    assert out.returncode == 1 and "holds no FlexKv cache" in out.stdout
    assert flexkv("inspect", tmp_path / "missing").returncode == 2
    (empty / "flexkv-journal.bin").write_bytes(b"not a journal" * 10)
    s = flexkv_json("inspect", empty, expect=1)
    assert s["readable"] is False and "magic" in s["problem"]
