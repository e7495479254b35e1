"""Faults and bad input through the connector: a failed load is recomputed exactly where it
failed, bad configurations and calls give clear errors or defined no-ops, and vLLM's step
never fails because of FlexKv."""

from __future__ import annotations

import logging
import time

import pytest
import torch

import flexkv
from flexkv.integration.vllm import _log, plugin
from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl

from .harness import prompt, reference_outputs
from .test_scenarios import flex, served, stats  # noqa: F401  (fixture reuse)

BS = 16


def ssd_config(tmp_path, **extra):
    return {"num_cpu_blocks": 64, "ssd_cache_gb": 256 * 8192 / 2**30, "ssd_cache_dir": str(tmp_path), **extra}


def wait_ssd(eng):
    deadline = time.time() + 10
    while stats(eng)["ssd_writes_pending"] and time.time() < deadline:
        time.sleep(0.01)


def test_injected_load_failure_recomputes_exactly_the_failed_blocks(flex, tmp_path):
    # A block whose bytes on SSD are damaged fails its checksum when loaded: vLLM gets its block
    # id in invalid_block_ids (with finished_recving held back to that same step) and recomputes
    # from there; the blocks before it are still served.
    eng = flex(extra_config=ssd_config(tmp_path))
    tokens = prompt(80)  # 5 full blocks of prompt
    served(eng, tokens, max_tokens=3)
    wait_ssd(eng)
    eng.close()
    with open(tmp_path / "flexkv-blocks.dat", "r+b") as f:  # damage the 4th block (slot 3)
        f.seek(3 * 4096 * ((64 * 2 * 2 * 8 * 2 + 4095) // 4096) + 100)
        f.write(b"\xff\xfe")
    eng2 = flex(extra_config=ssd_config(tmp_path))  # restart: CPU empty, SSD restored
    assert stats(eng2)["ssd_restored_blocks"] == 5
    done = served(eng2, tokens, max_tokens=3)
    assert stats(eng2)["ssd_checksum_failures"] == 1
    assert done.num_external_computed_tokens == 3 * BS  # blocks 0..2 loaded, 3.. recomputed
    assert eng2.loaded_tokens_verified(done.request_id) == 3 * BS
    eng2.assert_quiescent()


def test_unknown_layout_is_refused_naming_shape_and_strides(make_vllm_config):
    w = FlexKVConnectorV1Impl(make_vllm_config(), 1)
    with pytest.raises(flexkv.InvalidArgumentError, match=r"shape \(3, 5, 7\)"):
        w.register_kv_caches({"model.layers.0.self_attn.attn": torch.zeros(3, 5, 7)})


class _CudaLike:
    """What a CUDA tensor looks like to the layout code (shape, strides, a device pointer)."""

    _next = 0x7F0000000000

    def __init__(self, shape):
        self._t = torch.zeros(shape, dtype=torch.float16)
        self._ptr = _CudaLike._next
        _CudaLike._next += 1 << 30
        self.shape, self.device = self._t.shape, type("D", (), {"type": "cuda", "index": 0})()

    def stride(self):
        return self._t.stride()

    def element_size(self):
        return 2

    def data_ptr(self):
        return self._ptr


def test_cuda_tensors_without_a_driver_are_a_clear_error(make_vllm_config):
    cfg = make_vllm_config()
    s = FlexKVConnectorV1Impl(cfg, 0)  # the engine exists, so registration reaches it at once
    w = FlexKVConnectorV1Impl(cfg, 1)
    try:
        with pytest.raises(flexkv.NotSupportedError, match="libcuda|CUDA"):
            w.register_kv_caches({"layer0": _CudaLike((2, 8, 16, 2, 8)), "layer1": _CudaLike((2, 8, 16, 2, 8))})
    finally:
        s.shutdown()


def test_tensors_on_an_unsupported_device_are_refused(make_vllm_config):
    class Other:
        device = type("D", (), {"type": "xpu", "index": 0})()

        def data_ptr(self):
            return 1

    w = FlexKVConnectorV1Impl(make_vllm_config(), 1)
    with pytest.raises(flexkv.NotSupportedError, match="xpu"):
        w.register_kv_caches({"layer0": Other()})


def test_cuda_workers_in_other_processes_need_shareable_device_memory(make_vllm_config, tmp_path):
    """TP > 1 with CUDA: each tensor is exported as a CUDA IPC handle before anything is sent.
    Here the pointers are made up: without a driver that is what is missing, with one they are refused."""
    w = FlexKVConnectorV1Impl(make_vllm_config(tp=2, extra_config={"registration_socket": str(tmp_path / "s")}), 1)
    with pytest.raises((flexkv.NotSupportedError, flexkv.InvalidArgumentError),
                       match=r"rank \d cannot share KV cache tensor 0 .*(libcuda\.so\.1|not CUDA device memory)"):
        w.register_kv_caches({"layer0": _CudaLike((2, 8, 16, 2, 8)), "layer1": _CudaLike((2, 8, 16, 2, 8))})
    assert w.worker.registration is None  # nothing was sent


def test_config_disagreeing_with_vllm_is_a_clear_error(make_vllm_config):
    with pytest.raises(flexkv.ConfigError, match="tokens_per_block"):
        FlexKVConnectorV1Impl(make_vllm_config(extra_config={"tokens_per_block": 32}), 0)
    with pytest.raises(flexkv.ConfigError, match="unknown configuration key 'bogus'"):
        FlexKVConnectorV1Impl(make_vllm_config(extra_config={"bogus": 1}), 0)


class _Req:
    def __init__(self, rid, tokens):
        self.request_id, self.all_token_ids = rid, tokens
        self.num_tokens, self.num_computed_tokens = len(tokens), len(tokens) - 1
        self.cache_salt = self.lora_request = None

    def get_finished_reason(self):
        return type("R", (), {"name": "STOP"})()


def test_bad_calls_are_logged_once_and_never_raise(make_vllm_config, caplog):
    _log._seen.clear()
    s = FlexKVConnectorV1Impl(make_vllm_config(), 0)
    blocks = type("B", (), {"get_block_ids": lambda self: ([1, 2, 3],)})()
    with caplog.at_level(logging.WARNING, logger="flexkv.vllm"):
        # update_state_after_alloc without a prior match: no-op for 0 tokens, logged otherwise.
        s.update_state_after_alloc(_Req("never-matched", prompt(40)), blocks, 0)
        s.update_state_after_alloc(_Req("never-matched", prompt(40)), blocks, 16)
        s.update_state_after_alloc(_Req("never-matched-2", prompt(40)), blocks, 16)
        # request_finished twice: the second is refused, logged, and answers "do not hold".
        r = _Req("twice", prompt(40))
        s.request_finished(r, [1, 2, 3])
        assert s.request_finished(r, [1, 2, 3]) == (False, None)
        # Not block-aligned local hit: a miss, not an exception.
        assert s.get_num_new_matched_tokens(_Req("odd", prompt(40)), 5) == (0, False)
    msgs = [rec.getMessage() for rec in caplog.records]
    assert sum("could not plan a load" in m for m in msgs) == 1  # logged once
    assert any("already finished" in m for m in msgs)
    assert any("lookup failed" in m for m in msgs)
    s.shutdown()


def test_request_id_reused_after_it_finished_starts_a_new_request(make_vllm_config):
    # vLLM never reuses an id inside one engine; the engine still treats a reused id as new.
    s = FlexKVConnectorV1Impl(make_vllm_config(), 0)
    r = _Req("same", prompt(40))
    assert s.get_num_new_matched_tokens(r, 0) == (0, False)
    s.request_finished(r, [1, 2, 3])
    assert s.get_num_new_matched_tokens(_Req("same", prompt(40)), 0) == (0, False)
    s.shutdown()


def test_plugin_registration_is_idempotent(make_vllm_config):
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

    saved = dict(KVConnectorFactory._registry)
    try:
        KVConnectorFactory._registry.pop("FlexKVConnectorV1", None)
        plugin.register()
        plugin.register()  # a second run (or one after fork) must not raise
        assert "FlexKVConnectorV1" in KVConnectorFactory._registry
    finally:
        KVConnectorFactory._registry.clear()
        KVConnectorFactory._registry.update(saved)


def _damaged_ssd_engine(flex, tmp_path, tokens, slot, **cfg):
    """An engine restarted on an SSD cache whose block in ``slot`` fails its checksum."""
    eng = flex(extra_config=ssd_config(tmp_path))
    served(eng, tokens, max_tokens=3)
    wait_ssd(eng)
    eng.close()
    with open(tmp_path / "flexkv-blocks.dat", "r+b") as f:
        f.seek(slot * 4096 * ((64 * 2 * 2 * 8 * 2 + 4095) // 4096) + 100)
        f.write(b"\xff\xfe")
    return flex(extra_config=ssd_config(tmp_path), **cfg)


@pytest.mark.parametrize("async_scheduling, depth", [(False, None), (True, None), (True, 4)],
                         ids=["plain", "batch-queue", "pipeline-queue-of-4"])
def test_failed_load_while_another_request_runs_never_serves_unwritten_blocks(flex, tmp_path, async_scheduling, depth):
    # Another request keeps the engine stepping (with the batch queue: step k+1 runs before
    # step k's output is processed) while a load ends with a checksum failure. vLLM must get
    # the failed block ids before (or with) the load's finished_recving: every token attention
    # reads is checked, and an output computed from unwritten blocks that vLLM keeps fails.
    tokens = prompt(80)
    eng = _damaged_ssd_engine(flex, tmp_path, tokens, slot=3, async_scheduling=async_scheduling,
                              batch_queue_size=depth)
    busy = eng.add_request(prompt(40, 9000), 60)
    eng.run_until(lambda: busy.num_output_tokens >= 2)
    r = eng.add_request(tokens, 3)
    eng.run(keep_alive=True)
    done = eng.finished[r.request_id]
    assert stats(eng)["ssd_checksum_failures"] == 1
    assert done.num_external_computed_tokens == 3 * BS  # blocks 0..2 loaded, 3.. recomputed
    assert eng.loaded_tokens_verified(r.request_id) == 3 * BS
    assert list(done.output_token_ids) == reference_outputs(tokens, 3)
    assert list(eng.finished[busy.request_id].output_token_ids) == reference_outputs(prompt(40, 9000), 60)
    eng.assert_quiescent()


def test_data_parallel_ranks_on_one_ssd_directory_get_their_own_caches(make_vllm_config, tmp_path):
    # --data-parallel-size 2: each DP rank's engine core builds its own engine. One SSD
    # directory holds one engine's cache (its lock file refuses a second), so each rank uses
    # its own subdirectory; DP ranks share blocks only through the remote tier.
    from flexkv.integration.vllm._registration import socket_path

    engines = [FlexKVConnectorV1Impl(make_vllm_config(dp_size=2, dp_rank=r, extra_config=ssd_config(tmp_path)), 0)
               for r in (0, 1)]
    try:
        for r, e in enumerate(engines):
            assert e.scheduler.manager.config["ssd_cache_dir"] == str(tmp_path / f"dp{r}")
            assert stats_of(e)["ssd_blocks_total"] > 0
            assert (tmp_path / f"dp{r}" / "flexkv-blocks.dat").exists()
    finally:
        for e in engines:
            e.shutdown()
    assert socket_path("e", "/run/x.sock", 1) == "/run/x.sock.dp1"
    assert socket_path("e_dp1", None, 1).endswith("flexkv-e_dp1.sock")  # vLLM already suffixes engine ids
    assert socket_path("e", None, None).endswith("flexkv-e.sock")


def stats_of(impl) -> dict:
    return impl.scheduler.manager.stats()


@pytest.mark.parametrize("policy, ssd, warned", [("fail", True, True), ("fail", False, False),
                                                 ("recompute", True, False)])
def test_the_fail_policy_with_tiers_that_can_fail_is_warned_about_once(make_vllm_config, tmp_path, caplog, policy,
                                                                       ssd, warned):
    extra = ssd_config(tmp_path) if ssd else {}
    with caplog.at_level(logging.WARNING, logger="flexkv"):
        FlexKVConnectorV1Impl(make_vllm_config(kv_load_failure_policy=policy, extra_config=extra), 0).shutdown()
    hits = [r for r in caplog.records if "kv_load_failure_policy" in r.getMessage()]
    assert len(hits) == (1 if warned else 0)


@pytest.mark.parametrize("async_scheduling", [False, True], ids=["plain", "batch-queue"])
def test_with_the_fail_policy_a_failed_load_ends_its_request_with_an_error(flex, tmp_path, async_scheduling):
    # vLLM's default policy: the request whose blocks failed is finished with an error, and no
    # output computed from the unwritten blocks is ever kept.
    from vllm.v1.engine import FinishReason

    tokens = prompt(80)
    eng = _damaged_ssd_engine(flex, tmp_path, tokens, slot=3, async_scheduling=async_scheduling,
                              kv_load_failure_policy="fail")
    busy = eng.add_request(prompt(40, 9000), 40)
    eng.run_until(lambda: busy.num_output_tokens >= 2)
    r = eng.add_request(tokens, 3)
    eng.run(keep_alive=True)
    assert eng.finished[r.request_id].get_finished_reason() == FinishReason.ERROR
    assert list(eng.finished[busy.request_id].output_token_ids) == reference_outputs(prompt(40, 9000), 40)
    eng.assert_quiescent()
