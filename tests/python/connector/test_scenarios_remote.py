"""The remote tier through the vLLM harness: a second engine serves what the first saved in
Redis, and a frozen Redis (CLIENT PAUSE) never stalls a step: lookups answer None ("ask again")
while the store is asked, a late answer is a miss, and the breaker then skips Redis until it
recovers. Every loaded byte is checked by the harness's model."""

from __future__ import annotations

import shutil
import time

import pytest

from .harness import prompt, reference_outputs
from .test_scenarios import flex, served, stats  # noqa: F401  (fixture reuse)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

BS = 16


@pytest.fixture
def redis():
    from redis_support import RedisServer

    with RedisServer() as r:
        yield r


def remote(url: str, **extra):
    return {"remote_url": url, "remote_lookup_budget_ms": 100, "remote_timeout_ms": 1000, **extra}


def wait_written(eng):
    deadline = time.time() + 10
    while stats(eng)["remote_writes_pending"] and time.time() < deadline:
        time.sleep(0.01)


def test_a_cold_engine_loads_what_another_saved_in_redis(flex, redis):
    first = flex(extra_config=remote(redis.url))
    served(first, prompt(80))
    wait_written(first)
    second = flex(extra_config=remote(redis.url))
    done = served(second, prompt(80))  # a full-prompt hit: vLLM recomputes the last token
    assert done.num_external_computed_tokens == 80 and second.loaded_tokens_verified(done.request_id) == 79
    assert list(done.output_token_ids) == reference_outputs(prompt(80), 3)
    second.assert_quiescent()


def test_a_frozen_redis_never_stalls_a_step(flex, redis):
    first = flex(extra_config=remote(redis.url))
    served(first, prompt(80))
    wait_written(first)
    eng = flex(extra_config=remote(redis.url), max_num_seqs=64)

    answers = []
    sched = eng.connector.scheduler
    original = sched.get_num_new_matched_tokens

    def recording(request, num_computed_tokens):
        got = original(request, num_computed_tokens)
        answers.append(got[0])
        return got

    sched.get_num_new_matched_tokens = recording
    redis.cli("CLIENT", "PAUSE", "1500", "ALL")  # Redis answers nothing for 1.5 s
    paused_until = time.time() + 1.6
    reqs = [eng.add_request(prompt(80) + prompt(8, 20_000 + 10 * i), 2) for i in range(50)]
    eng.run(keep_alive=True)
    assert None in answers  # asked again while Redis was asked, never waited for it
    st = stats(eng)
    assert st["remote_lookups_late"] >= 1 and st["remote_breaker_open"]
    for r in reqs:  # computed, or loaded from the CPU tier once an earlier one saved the prefix
        done = eng.finished[r.request_id]
        assert eng.loaded_tokens_verified(r.request_id) == done.num_external_computed_tokens
        assert list(done.output_token_ids) == reference_outputs(list(r.prompt_token_ids), 2)
    assert stats(eng)["remote_blocks_read"] == 0
    eng.assert_quiescent()

    # The pause ends; after the breaker's cool-down (it doubles while probes come back late) the
    # next lookup probes Redis and, answered in time, closes it.
    deadline = time.time() + 15
    while (stats(eng)["remote_breaker_open"] or time.time() < paused_until) and time.time() < deadline:
        time.sleep(0.05)
    eng.reset_prefix_cache(reset_connector=True)  # the CPU tier forgets: only Redis has the prefix
    done = served(eng, prompt(80) + prompt(8, 90_000))
    assert done.num_external_computed_tokens == 80 and eng.loaded_tokens_verified(done.request_id) == 80
    assert stats(eng)["remote_blocks_read"] == 5
    assert not stats(eng)["remote_breaker_open"]
    eng.assert_quiescent()
