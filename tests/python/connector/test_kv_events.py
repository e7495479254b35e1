"""KV events through the connector, as vLLM's scheduler takes them (take_events, once a step): a
save, an eviction, a block that failed its checksum and a reset, in order, each block named by
vLLM's own hash (request.block_hashes through vLLM's maybe_convert_block_hash), the tier as the
event's medium; nothing at all unless vLLM's kv_events_config enables them."""

from __future__ import annotations

from vllm.distributed.kv_events import AllBlocksCleared, BlockRemoved, BlockStored
from vllm.v1.core.kv_cache_utils import maybe_convert_block_hash

from flexkv.metrics import snapshot

from .harness import prompt
from .test_scenarios import flex, stats  # noqa: F401  (fixture reuse)
from .test_scenarios_faults import ssd_config, wait_ssd

BS = 16
SLOT_BYTES = 4096 * ((64 * 2 * 2 * 8 * 2 + 4095) // 4096)  # one SSD slot of the harness's model


def run(eng, tokens, max_tokens=3, **kw):
    r = eng.add_request(tokens, max_tokens, **kw)
    eng.run(keep_alive=True)
    return r


def h(request, i):
    return maybe_convert_block_hash(request.block_hashes[i])


def per_block(events) -> list:
    """The events block by block: ("stored", medium, hash, parent), ("removed", medium, hash), ("cleared",)."""
    out = []
    for e in events:
        if isinstance(e, AllBlocksCleared):
            out.append(("cleared",))
        elif isinstance(e, BlockRemoved):
            out += [("removed", e.medium, x) for x in e.block_hashes]
        else:
            parents = [e.parent_block_hash] + list(e.block_hashes[:-1])
            out += [("stored", e.medium, x, p) for x, p in zip(e.block_hashes, parents)]
    return out


def stored(medium, r, blocks):
    return [("stored", medium, h(r, i), h(r, i - 1) if i else None) for i in blocks]


def removed(medium, r, blocks):
    return [("removed", medium, h(r, i)) for i in blocks]


def test_a_save_an_eviction_a_failed_block_and_a_reset_are_events_in_order(flex, tmp_path):
    # 5 CPU slots in front of SSD: each 5-block request pushes the previous one's blocks to SSD only.
    eng = flex(extra_config={**ssd_config(tmp_path), "num_cpu_blocks": 5}, kv_events=True)
    a = run(eng, prompt(80))
    wait_ssd(eng)
    first = eng.scheduler.kv_events[0]
    assert isinstance(first, BlockStored) and first.medium == "CPU"  # one event for the save's chain
    assert first.block_hashes == [h(a, i) for i in range(5)] and first.parent_block_hash is None
    assert first.token_ids == list(a.all_token_ids[:80]) and first.block_size == BS
    assert first.lora_id is None and first.extra_keys is None

    b = run(eng, prompt(80, 9000))  # its save evicts a's CPU copies (SSD keeps them)
    wait_ssd(eng)
    with open(tmp_path / "flexkv-blocks.dat", "r+b") as f:  # damage a's 4th block (slot 3) on disk
        f.seek(3 * SLOT_BYTES + 100)
        f.write(b"\xff\xfe")
    c = run(eng, prompt(80))  # a's prompt again: loaded from SSD, the 4th block fails its checksum
    assert eng.finished[c.request_id].num_external_computed_tokens == 3 * BS
    assert stats(eng)["ssd_checksum_failures"] == 1
    assert eng.reset_prefix_cache(reset_connector=True)
    run(eng, prompt(20, 50_000), max_tokens=1)  # a next step takes the reset's event

    got = per_block(eng.scheduler.kv_events)
    got = got[:got.index(("cleared",)) + 1]
    lru = lambda r: set(removed("CPU", r, range(5)))  # noqa: E731  evicted leaves first, ties in no set order
    want = [stored("CPU", a, range(5)), stored("SSD", a, range(5)), lru(a), stored("CPU", b, range(5)),
            stored("SSD", b, range(5)), lru(b),
            stored("CPU", a, [0, 1, 2]) + removed("SSD", a, [3]) + stored("CPU", a, [4]),  # c's load of a's blocks
            stored("CPU", a, [3]) + stored("SSD", a, [3]),  # c recomputed block 3 and saved it again
            [("cleared",)]]
    at = 0
    for part in want:
        chunk = got[at:at + len(part)]
        assert (set(chunk) if isinstance(part, set) else chunk) == part, (at, chunk, part)
        at += len(part)
    assert at == len(got)
    v = snapshot(eng.connector.scheduler.manager)
    assert v["kv_events_dropped"] == 0 and v["kv_events_unhashed"] == 0
    eng.assert_quiescent()


def test_a_lora_request_s_stored_blocks_carry_its_lora_and_extra_keys(flex):
    eng = flex(kv_events=True)
    r = run(eng, prompt(40), lora_name="adapter-a", cache_salt="salt-1")
    e = eng.scheduler.kv_events[0]
    assert isinstance(e, BlockStored) and e.block_hashes == [h(r, 0), h(r, 1)]
    assert e.lora_id == r.lora_request.lora_int_id and e.lora_name == "adapter-a"
    assert e.extra_keys == [("adapter-a", "salt-1"), ("adapter-a",)]  # the salt covers the first block
    assert e.token_ids == list(r.all_token_ids[:32])
    other = run(eng, prompt(40))  # the same tokens without LoRA and salt are other blocks
    assert set(eng.scheduler.kv_events[-1].block_hashes).isdisjoint(e.block_hashes)
    assert eng.scheduler.kv_events[-1].block_hashes == [h(other, 0), h(other, 1)]


def test_hashes_are_vllm_s_bytes_when_vllm_sends_bytes(flex, monkeypatch):
    monkeypatch.setenv("VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES", "0")
    eng = flex(kv_events=True)
    r = run(eng, prompt(40))
    assert eng.scheduler.kv_events[0].block_hashes == list(r.block_hashes[:2])
    assert isinstance(eng.scheduler.kv_events[0].block_hashes[0], bytes)


def test_without_kv_events_config_nothing_is_recorded(flex):
    eng = flex()
    run(eng, prompt(40))
    assert eng.scheduler.kv_events == []
    assert eng.connector.scheduler.kv_events is None
    assert snapshot(eng.connector.scheduler.manager)["kv_events_recorded"] == 0


def test_events_not_taken_in_time_drop_the_oldest_and_are_counted(flex):
    eng = flex(extra_config={"kv_events_buffer": 3}, kv_events=True)
    sched = eng.connector.scheduler
    sched.kv_events.take = lambda: []  # a vLLM that does not take them (the engine keeps 3)
    run(eng, prompt(80))
    del sched.kv_events.take
    events = sched.take_events()
    assert len(per_block(events)) == 3
    v = snapshot(sched.manager)
    assert v["kv_events_recorded"] == 5 and v["kv_events_dropped"] == 2
