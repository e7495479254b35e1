"""flexkv plan's sweeps and reports: hit ratio grows with capacity, bandwidth follows the trace's
timestamps, chunked reading changes nothing, the PNG is written, and bad input exits 2."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
from cli_support import flexkv, flexkv_json, mooncake_requests, write_mooncake_trace, write_tokens_trace

from flexkv import workload
from flexkv.cli.plan import model, sweep, traces

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def chat_path(tmp_path_factory):
    params = dataclasses.replace(workload.small(2), conversations=12, turns=4)
    reqs = [(r["prompt"], r["output"]) for r in workload.generate(params)]
    return write_tokens_trace(tmp_path_factory.mktemp("trace") / "chat.jsonl", reqs)


def totals(doc):
    return [r["hit_ratio"]["total"] for r in doc["results"]]


def test_hit_ratio_grows_with_cpu_capacity(chat_path):
    doc = flexkv_json("plan", chat_path, "--cpu", "100b,200b,400b,800b,1600b,3200b,inf")
    ratios = totals(doc)
    assert ratios == sorted(ratios) and ratios[0] < ratios[-1]
    assert [r["cpu_blocks"] for r in doc["results"][:3]] == [100, 200, 400]


def test_hit_ratio_grows_with_ssd_capacity_behind_a_fixed_cpu(chat_path):
    doc = flexkv_json("plan", chat_path, "--cpu", "100b", "--ssd", "0,200b,400b,800b,1600b,inf")
    ratios = totals(doc)
    assert ratios == sorted(ratios) and ratios[0] < ratios[-1]
    assert doc["results"][0]["hit_ratio"]["ssd"] == 0 and doc["results"][-1]["hit_ratio"]["ssd"] > 0


def test_sizes_in_gb_become_the_engines_slot_counts(chat_path):
    # 1 KiB per token, 16-token blocks: 16 KiB blocks, SSD slots of 16 KiB (already 4 KiB-aligned).
    doc = flexkv_json("plan", chat_path, "--model-bytes-per-token", "1024", "--cpu", "0.5", "--ssd", "1")
    r = doc["results"][0]
    assert (r["cpu_blocks"], r["ssd_blocks"]) == ((1 << 29) // (16 << 10), (1 << 30) // (16 << 10))
    assert doc["block_bytes"] == 16 << 10


def test_bandwidth_and_gpu_seconds_follow_the_trace(tmp_path):
    reqs = mooncake_requests(seed=9)
    path = write_mooncake_trace(tmp_path / "m.jsonl", reqs)
    doc = flexkv_json("plan", path, "--model-bytes-per-token", "2048", "--cpu", "inf", "--prefill-tokens-per-s", "5000")
    span = (reqs[-1]["timestamp"] - reqs[0]["timestamp"]) / 1000
    assert doc["trace"]["duration_s"] == pytest.approx(span)
    r = doc["results"][0]
    loaded = r["blocks"]["loaded_from_cpu"] + r["blocks"]["loaded_from_ssd"]
    assert r["bandwidth_gb_per_s"]["cpu_to_gpu"] == pytest.approx(loaded * 2048 * 16 / span / 1e9)
    assert r["bandwidth_gb_per_s"]["gpu_to_cpu"] == pytest.approx(r["blocks"]["saved_to_cpu"] * 2048 * 16 / span / 1e9)
    assert r["gpu_seconds_saved"] == pytest.approx(r["tokens_not_recomputed"] / 5000)
    assert r["replay_tokens_per_s"] > 0 and doc["replay_tokens_per_s"] > 0


def test_no_timestamps_and_no_rate_means_no_bandwidth(chat_path):
    doc = flexkv_json("plan", chat_path, "--model", "llama-3-8b")
    assert doc["results"][0]["bandwidth_gb_per_s"] is None and doc["trace"]["duration_s"] is None
    with_rate = flexkv_json("plan", chat_path, "--model", "llama-3-8b", "--request-rate", "4")
    assert with_rate["trace"]["duration_s"] == pytest.approx(with_rate["trace"]["requests"] / 4)


def test_chunks_continue_one_cache(tmp_path):
    reqs = mooncake_requests(seed=4)
    path = write_mooncake_trace(tmp_path / "m.jsonl", reqs)
    caps = [sweep.Capacity(None, None, 300, 0), sweep.Capacity(None, None, 100, 400)]
    whole, _ = sweep.run(caps, 16, traces.mooncake(str(path)))
    small, info = sweep.run(caps, 16, traces.mooncake(str(path), chunk_tokens=3000))
    assert info.requests == len(reqs)
    assert [o.stats for o in small] == [o.stats for o in whole]


def test_model_geometry_is_the_engines_arithmetic():
    assert model.bytes_per_token("llama-3-8b", None) == 32 * 8 * 128 * 2 * 2
    assert model.bytes_per_token("layers=4,kv_heads=2,head_size=64,dtype=fp8", None) == 4 * 2 * 64 * 1 * 2
    assert model.bytes_per_token("layers=4,kv_heads=1,head_size=576,mla", None) == 4 * 576 * 2
    assert model.bytes_per_token(None, 777) == 777


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_writes_a_png(chat_path, tmp_path):
    png = tmp_path / "hits.png"
    out = flexkv("plan", chat_path, "--cpu", "100b,400b,1600b", "--ssd", "0,800b", "--plot", png)
    assert out.returncode == 0, out.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plot_without_matplotlib_says_so_and_exits_1(chat_path, tmp_path, monkeypatch, capsys):
    from flexkv.cli import main
    from flexkv.cli.plan import plot

    monkeypatch.setattr(plot, "available", lambda: False)
    monkeypatch.setenv("DOTNET_gcConcurrent", "0")  # plan sets it for its process: restored after the test
    rc = main(["plan", str(chat_path), "--cpu", "100b", "--plot", str(tmp_path / "x.png")])
    out = capsys.readouterr()
    assert rc == 1 and "matplotlib is not installed" in out.err and "hit total" in out.out
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args,message", [
    (["--cpu", "16"], "needs the KV size"),
    (["--cpu", "abc"], "expected GB"),
    (["--cpu", "0"], "cannot be empty"),
    (["--model", "no-such-model"], "not a known model"),
    (["--model", "layers=2,kv_heads=2"], "head_size= is missing"),
    (["--tokens-per-block", "0"], "--tokens-per-block"),
])
def test_bad_options_exit_2_with_the_reason(chat_path, args, message):
    out = flexkv("plan", chat_path, *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_bad_traces_exit_2(tmp_path):
    assert flexkv("plan", tmp_path / "missing.jsonl").returncode == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 0, "input_length": 2000, "output_length": 1, "hash_ids": [1, 2]}\n')
    out = flexkv("plan", bad)
    assert out.returncode == 2 and "does not fit 2 hash ids" in out.stderr
    bad.write_text('{"neither": 1}\n')
    assert "neither a Mooncake request" in flexkv("plan", bad).stderr
    assert flexkv("plan").returncode == 2  # no trace and no --generate
