"""FlexKv's connector (``FlexKVConnectorV1Impl``) driven by the vLLM harness: scheduler and
worker instances in one process, as with vLLM's uniprocess executor. Every token a request
reads that it did not compute itself is checked against the KV the model wrote for that prefix
(``loaded_tokens_verified``); freshly allocated GPU blocks are poisoned, so stale bytes never
pass for a load."""

from __future__ import annotations

import pytest

from vllm.v1.request import RequestStatus

from .harness import Engine, prompt, reference_outputs

from flexkv.integration.vllm.vllm_v1_adapter import FlexKVConnectorV1Impl

BS = 16


def impl(vllm_config, role, kv_cache_config):
    # What vLLM's built-in FlexKVConnectorV1 wrapper does: two arguments.
    return FlexKVConnectorV1Impl(vllm_config, role)


@pytest.fixture
def flex(make_vllm_config, make_engine):
    def make(num_gpu_blocks: int = 64, layout: str = "kv_first", **cfg) -> Engine:
        config = make_vllm_config(use_mla=layout == "mla", **cfg)
        return make_engine(config, num_gpu_blocks=num_gpu_blocks, layout=layout, make_connector=impl)

    return make


def served(eng: Engine, tokens, max_tokens: int = 3, **kw):
    """Runs one request to completion and until its save is acknowledged (FlexKV's keep-alive)."""
    r = eng.add_request(tokens, max_tokens, **kw)
    eng.run(keep_alive=True)
    return eng.finished[r.request_id]


def stats(eng: Engine) -> dict:
    return eng.connector.scheduler.manager.stats()


def test_cold_miss_computes_everything_and_saves_full_blocks(flex):
    eng = flex()
    done = served(eng, prompt(40))
    assert done.num_external_computed_tokens == 0 and done.num_cached_tokens == 0
    assert list(done.output_token_ids) == reference_outputs(prompt(40), 3)
    assert eng.loaded_tokens_verified(done.request_id) == 0
    assert stats(eng)["blocks_saved"] == 2  # 42 computed tokens: 2 full blocks
    eng.assert_quiescent()


@pytest.mark.parametrize("layout", ["kv_first", "blocks_first", "packed", "cpu_attn", "mla"])
def test_warm_hit_from_cpu_loads_every_byte(flex, layout):
    eng = flex(layout=layout)
    first = served(eng, prompt(40))
    b = eng.add_request(prompt(40), 3)
    eng.run_until(lambda: b.status == RequestStatus.RUNNING)
    assert b.num_external_computed_tokens == 32 and eng.verify_request_blocks(b, 32) == 2
    eng.run(keep_alive=True)
    done = eng.finished[b.request_id]
    assert done.num_cached_tokens == 32 and eng.loaded_tokens_verified(b.request_id) == 32
    assert list(done.output_token_ids) == list(first.output_token_ids)
    eng.assert_quiescent()


def test_partial_prefix_hit_stops_at_the_first_differing_block(flex):
    eng = flex()
    served(eng, prompt(64))
    other = prompt(40) + prompt(24, 7000)  # shares blocks 0-1, diverges inside block 2
    done = served(eng, other)
    assert done.num_external_computed_tokens == 32 and eng.loaded_tokens_verified(done.request_id) == 32
    assert list(done.output_token_ids) == reference_outputs(other, 3)
    eng.assert_quiescent()


def test_full_prompt_hit_recomputes_only_the_last_token(flex):
    eng = flex()
    served(eng, prompt(48), max_tokens=2)  # 49 computed tokens: all 3 prompt blocks saved
    done = served(eng, prompt(48), max_tokens=2)
    assert done.num_external_computed_tokens == 48 and done.num_cached_tokens == 47
    assert eng.loaded_tokens_verified(done.request_id) == 47
    assert list(done.output_token_ids) == reference_outputs(prompt(48), 2)
    eng.assert_quiescent()


def test_64_concurrent_requests_all_hit_and_load_correct_bytes(flex):
    eng = flex(num_gpu_blocks=512, extra_config={"num_cpu_blocks": 512})
    prompts = [prompt(40 + i % 9, 1000 * (i + 1)) for i in range(64)]
    cold = [eng.add_request(p, 2) for p in prompts]
    eng.run(keep_alive=True)
    warm = [eng.add_request(p, 2) for p in prompts]
    eng.run(keep_alive=True)
    for c, w in zip(cold, warm):
        full = (c.num_tokens - 1) // BS * BS  # blocks saved by the cold request
        want = min(full, w.num_prompt_tokens // BS * BS)
        assert eng.finished[w.request_id].num_external_computed_tokens == want
        assert eng.loaded_tokens_verified(w.request_id) == min(want, w.num_prompt_tokens - 1)
        assert list(eng.finished[w.request_id].output_token_ids) == list(eng.finished[c.request_id].output_token_ids)
    eng.assert_quiescent()


def test_two_requests_sharing_a_cached_prefix_load_in_the_same_step(flex):
    eng = flex()
    served(eng, prompt(48))
    a, b = eng.add_request(prompt(40), 2), eng.add_request(prompt(40) + prompt(20, 5000), 2)
    eng.step()
    assert a.status == b.status == RequestStatus.WAITING_FOR_REMOTE_KVS
    eng.run(keep_alive=True)
    for r in (a, b):
        assert eng.finished[r.request_id].num_external_computed_tokens == 32
        assert eng.loaded_tokens_verified(r.request_id) == 32
    eng.assert_quiescent()


def test_two_cold_requests_with_one_prefix_in_one_step_then_a_hit(flex):
    eng = flex()
    a, b = eng.add_request(prompt(40), 2), eng.add_request(prompt(40), 2)
    eng.run(keep_alive=True)
    assert eng.finished[a.request_id].num_external_computed_tokens == 0
    assert eng.finished[b.request_id].num_external_computed_tokens == 0
    done = served(eng, prompt(40), 2)
    assert done.num_external_computed_tokens == 32 and eng.loaded_tokens_verified(done.request_id) == 32
    eng.assert_quiescent()


def test_preemption_of_a_running_request_while_another_loads(flex):
    eng = flex(max_num_batched_tokens=32)
    served(eng, prompt(64))
    runner = eng.add_request(prompt(40, 9000), 30)
    eng.run_until(lambda: runner.num_output_tokens >= 1)
    loader = eng.add_request(prompt(64), 2)
    eng.step()
    assert loader.status == RequestStatus.WAITING_FOR_REMOTE_KVS
    eng.preempt(runner.request_id)  # its blocks return to the pool while the load is in flight
    eng.run(keep_alive=True)
    assert eng.finished[loader.request_id].num_external_computed_tokens == 64  # a full-prompt hit
    assert eng.loaded_tokens_verified(loader.request_id) == 63
    assert list(eng.finished[runner.request_id].output_token_ids) == reference_outputs(prompt(40, 9000), 30)
    eng.assert_quiescent()


def test_request_preempted_right_after_its_load_is_loaded_again(flex):
    eng = flex(max_num_batched_tokens=8)  # the prefill after the load takes several chunks
    served(eng, prompt(80), max_tokens=1)
    r = eng.add_request(prompt(80) + prompt(40, 6000), 2)
    eng.run_until(lambda: r.status == RequestStatus.RUNNING)
    eng.step()
    eng.preempt(r.request_id)
    eng.step()
    assert r.status == RequestStatus.PREEMPTED and r.num_computed_tokens == 0
    eng.run(keep_alive=True)
    done = eng.finished[r.request_id]
    assert done.num_preemptions == 1 and done.num_external_computed_tokens == 80
    assert eng.loaded_tokens_verified(r.request_id) == 160  # 80 tokens loaded, twice
    assert list(done.output_token_ids) == reference_outputs(prompt(80) + prompt(40, 6000), 2)
    eng.assert_quiescent()


def test_abort_while_loading_and_while_running(flex):
    eng = flex()
    served(eng, prompt(48))
    saved = stats(eng)["blocks_saved"]
    loading = eng.add_request(prompt(48), 5)
    eng.step()
    assert loading.status == RequestStatus.WAITING_FOR_REMOTE_KVS
    in_flight = loading.request_id in eng.scheduler.loading  # the copy threads may already be done
    eng.abort(loading.request_id)
    # vLLM holds the blocks of an aborted request until its load is reported.
    assert (loading.request_id in eng.scheduler.requests) == in_flight
    running = eng.add_request(prompt(48, 3000), 50)
    eng.run_until(lambda: running.num_output_tokens >= 2)
    eng.abort(running.request_id)
    eng.run(keep_alive=True)
    assert stats(eng)["blocks_saved"] == saved  # aborts are not saved (save_on_abort is off)
    eng.assert_quiescent()


def test_reset_cache_forgets_everything(flex):
    eng = flex()
    served(eng, prompt(40))
    assert eng.reset_prefix_cache(reset_connector=True) is True
    done = served(eng, prompt(40))
    assert done.num_external_computed_tokens == 0
    assert served(eng, prompt(40)).num_external_computed_tokens == 32
    eng.assert_quiescent()


def test_capacity_pressure_evicts_old_prefixes_and_never_loads_stale_bytes(flex):
    eng = flex(extra_config={"num_cpu_blocks": 8})
    prompts = [prompt(40, 1000 * (i + 1)) for i in range(8)]  # 2 saved blocks each: 16 > 8
    for p in prompts:
        served(eng, p)
    assert stats(eng)["evictions"] > 0
    hits = [served(eng, p) for p in reversed(prompts)]
    assert hits[0].num_external_computed_tokens == 32  # the newest prefix is still there
    assert any(h.num_external_computed_tokens < 32 for h in hits)  # the oldest ones are gone
    for h in hits:
        assert eng.loaded_tokens_verified(h.request_id) == h.num_external_computed_tokens
    eng.assert_quiescent()


def test_a_different_cache_salt_never_hits(flex):
    eng = flex()
    served(eng, prompt(40), cache_salt="alice")
    assert served(eng, prompt(40), cache_salt="bob").num_external_computed_tokens == 0
    assert served(eng, prompt(40)).num_external_computed_tokens == 0
    hit = served(eng, prompt(40), cache_salt="alice")
    assert hit.num_external_computed_tokens == 32 and eng.loaded_tokens_verified(hit.request_id) == 32
    eng.assert_quiescent()


@pytest.mark.parametrize("route", ["builtin", "module_path", "plugin"])
def test_vllm_builds_the_connector_by_name(make_vllm_config, make_engine, route):
    """vLLM >= 0.17.2's built-in wrapper, ``kv_connector_module_path``, and the plugin."""
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

    path = "flexkv.integration.vllm.connector" if route == "module_path" else None
    if route == "module_path":
        KVConnectorFactory.module_path_first = True  # 2026 order; older vLLM prefers the built-in name
    if route == "plugin":
        KVConnectorFactory._registry.pop("FlexKVConnectorV1")  # a vLLM without the built-in
        from flexkv.integration.vllm import plugin

        plugin.register()
        plugin.register()  # plugins run in several processes / more than once
    eng = make_engine(make_vllm_config(kv_connector_module_path=path), num_gpu_blocks=64)
    served(eng, prompt(40))
    done = served(eng, prompt(40))
    assert done.num_external_computed_tokens == 32 and eng.loaded_tokens_verified(done.request_id) == 32
    eng.assert_quiescent()
    logged = eng.logged_kv_metrics()
    if route == "builtin":
        assert logged is None  # vLLM's wrapper does not forward build_kv_connector_stats
    else:
        assert logged["flexkv_blocks_loaded"] == 2 and logged["flexkv_blocks_saved"] == 2
