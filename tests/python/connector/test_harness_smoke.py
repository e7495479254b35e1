"""The harness itself: vLLM's loop with no connector and with a no-op connector that records
every call, so that a FlexKv failure elsewhere is a FlexKv failure, not a harness one."""

from __future__ import annotations

from collections import Counter

import pytest

from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorBase_V1, KVConnectorMetadata, KVConnectorRole
from vllm.v1.engine import FinishReason
from vllm.v1.request import RequestStatus

from .harness import ConnectorContractError, prompt, reference_outputs


class NoOpConnector(KVConnectorBase_V1):
    """Never has anything, never holds blocks; logs every call (shared by both roles)."""

    log: list = []

    def __init__(self, vllm_config, role, kv_cache_config=None):
        super().__init__(vllm_config, role, kv_cache_config)

    def _rec(self, name, *args):
        self.log.append((self.role.name, name) + args)

    def get_num_new_matched_tokens(self, request, num_computed_tokens):
        self._rec("get_num_new_matched_tokens", request.request_id, num_computed_tokens, request.num_preemptions)
        return 0, False

    def update_state_after_alloc(self, request, blocks, num_external_tokens):
        self._rec("update_state_after_alloc", request.request_id, num_external_tokens, blocks.get_block_ids()[0])

    def build_connector_meta(self, scheduler_output):
        self._rec("build_connector_meta", scheduler_output.total_num_scheduled_tokens,
                  set(scheduler_output.preempted_req_ids or ()))
        return KVConnectorMetadata()

    def update_connector_output(self, connector_output):
        self._rec("update_connector_output")

    def request_finished(self, request, block_ids):
        self._rec("request_finished", request.request_id, request.get_finished_reason(), list(block_ids))
        return False, None

    def reset_cache(self):
        self._rec("reset_cache")
        return True

    def register_kv_caches(self, kv_caches):
        self._rec("register_kv_caches", tuple(kv_caches))

    def start_load_kv(self, forward_context, **kwargs):
        self._rec("start_load_kv")

    def wait_for_layer_load(self, layer_name):
        self._rec("wait_for_layer_load", layer_name)

    def save_kv_layer(self, layer_name, kv_layer, attn_metadata, **kwargs):
        self._rec("save_kv_layer", layer_name, len(attn_metadata.slot_mapping))

    def wait_for_save(self):
        self._rec("wait_for_save")

    def get_finished(self, finished_req_ids):
        self._rec("get_finished", set(finished_req_ids))
        return None, None

    def handle_preemptions(self, kv_connector_metadata):
        self._rec("handle_preemptions", kv_connector_metadata)

    def take_events(self):
        self._rec("take_events")
        return ["event"]


@pytest.fixture(autouse=True)
def _fresh_log():
    NoOpConnector.log = []


@pytest.fixture
def noop(make_vllm_config, make_engine):
    def make(**kw):
        cfg = make_vllm_config(kv_connector="NoOpConnector", kv_connector_module_path=__name__,
                               **{k: kw.pop(k) for k in list(kw) if k in ("max_num_batched_tokens", "num_layers")})
        return make_engine(cfg, **kw)

    return make


def calls(name, role=None):
    return [c for c in NoOpConnector.log if c[1] == name and (role is None or c[0] == role)]


def test_without_connector_requests_complete_with_deterministic_outputs(make_vllm_config, make_engine):
    eng = make_engine(make_vllm_config(kv_connector=None), num_gpu_blocks=32)
    a, b, c = eng.add_request(prompt(40), 3), eng.add_request(prompt(40), 3), eng.add_request(prompt(17, 5), 5)
    eng.run()
    assert list(eng.finished[a.request_id].output_token_ids) == reference_outputs(prompt(40), 3)
    assert list(eng.finished[a.request_id].output_token_ids) == list(eng.finished[b.request_id].output_token_ids)
    assert len(eng.finished[c.request_id].output_token_ids) == 5
    assert eng.finished[c.request_id].get_finished_reason() == FinishReason.STOP
    eng.assert_quiescent()
    assert eng.step() is None  # an idle engine does not step


def test_connector_is_built_by_the_factory_in_vllms_order(noop):
    eng = noop()
    assert type(eng.connector) is NoOpConnector and eng.connector.role == KVConnectorRole.SCHEDULER
    assert eng.worker.connector.role == KVConnectorRole.WORKER
    first = NoOpConnector.log[0]
    assert first[:2] == ("WORKER", "register_kv_caches")
    assert first[2] == ("model.layers.0.self_attn.attn", "model.layers.1.self_attn.attn")


def test_connector_calls_follow_the_scheduler_and_worker_order(noop):
    eng = noop()
    r = eng.add_request(prompt(40), max_tokens=2)
    eng.run()
    names = [c[1] for c in NoOpConnector.log[1:] if c[1] != "take_events"]
    # step 1 (prefill) ... step 2 (decode) ... step 3 (only the finished id travels to the worker)
    step = ["handle_preemptions", "start_load_kv", "wait_for_layer_load", "save_kv_layer", "wait_for_layer_load",
            "save_kv_layer", "wait_for_save", "get_finished", "update_connector_output"]
    assert names == (["get_num_new_matched_tokens", "update_state_after_alloc", "build_connector_meta"] + step
                     + ["build_connector_meta"] + step[:-1] + ["request_finished"] + ["update_connector_output"]
                     + ["build_connector_meta", "handle_preemptions", "start_load_kv", "get_finished"])
    assert calls("update_state_after_alloc")[0][2:] == (r.request_id, 0, eng.history[0].scheduler_output
                                                       .scheduled_new_reqs[0].block_ids[0])
    assert 0 not in calls("update_state_after_alloc")[0][4]  # the null block is never handed out
    assert calls("get_finished")[-1][2] == {r.request_id}
    # The last step had nothing scheduled and an empty worker output: no update_connector_output.
    assert eng.history[-1].model_output.kv_connector_output is None
    assert eng.scheduler.connector_output_calls == 2


def test_every_admitted_request_gets_update_state_after_alloc_and_one_request_finished(noop):
    eng = noop()
    reqs = [eng.add_request(prompt(16 + i, 100 * i), max_tokens=1 + i % 3) for i in range(6)]
    eng.run()
    assert Counter(c[2] for c in calls("update_state_after_alloc")) == {r.request_id: 1 for r in reqs}
    assert Counter(c[2] for c in calls("request_finished")) == {r.request_id: 1 for r in reqs}
    assert all(c[3] == FinishReason.STOP for c in calls("request_finished"))
    assert len(calls("build_connector_meta")) == eng.scheduler.step_index
    eng.assert_quiescent()


def test_chunked_prefill_gives_the_same_tokens_and_kv(noop):
    eng = noop(max_num_batched_tokens=24)
    r = eng.add_request(prompt(70), max_tokens=3)
    eng.run_until(lambda: r.num_computed_tokens >= 48)
    assert eng.verify_request_blocks(r) == 3
    eng.run()
    assert list(eng.finished[r.request_id].output_token_ids) == reference_outputs(prompt(70), 3)
    assert [s.scheduler_output.num_scheduled_tokens.get(r.request_id) for s in eng.history[:3]] == [24, 24, 22]


def test_block_shortage_preempts_and_the_request_is_asked_about_again(noop):
    # 5 usable blocks: two 32-token prompts fit (2 blocks each) until decoding needs a third block.
    eng = noop(num_gpu_blocks=6)
    a, b = eng.add_request(prompt(32), max_tokens=20), eng.add_request(prompt(32, 9000), max_tokens=20)
    eng.run()
    preempted = [c for c in calls("build_connector_meta") if c[3]]
    assert preempted and preempted[0][3] == {b.request_id}
    asked = [c for c in calls("get_num_new_matched_tokens") if c[2] == b.request_id]
    assert [c[4] for c in asked][:2] == [0, 1]  # again after the preemption, num_preemptions=1
    assert eng.finished[b.request_id].num_preemptions >= 1
    assert list(eng.finished[b.request_id].output_token_ids) == reference_outputs(prompt(32, 9000), 20)
    eng.assert_quiescent()


def test_forced_preemption_resumes_with_fresh_blocks(noop):
    eng = noop()
    r = eng.add_request(prompt(40), max_tokens=4)
    eng.step()
    eng.preempt(r.request_id)
    res = eng.step()
    assert res.scheduler_output.preempted_req_ids == {r.request_id} and res.scheduler_output.total_num_scheduled_tokens == 0
    res = eng.step()
    assert r.request_id in res.scheduler_output.scheduled_cached_reqs.resumed_req_ids
    eng.run()
    assert list(eng.finished[r.request_id].output_token_ids) == reference_outputs(prompt(40), 4)


def test_abort_goes_through_request_finished(noop):
    eng = noop()
    r = eng.add_request(prompt(40), max_tokens=50)
    eng.step()
    eng.abort(r.request_id)
    assert calls("request_finished")[-1][2:4] == (r.request_id, FinishReason.ABORT)
    assert eng.finished[r.request_id].status == RequestStatus.FINISHED_ABORTED
    eng.run()
    assert calls("get_finished")[-1][2] == {r.request_id}
    eng.assert_quiescent()


def test_reset_prefix_cache_fails_while_blocks_are_held_and_resets_the_connector(noop):
    eng = noop()
    eng.add_request(prompt(40), max_tokens=3)
    eng.step()
    # vLLM resets the connector even though its own reset failed.
    assert eng.reset_prefix_cache(reset_connector=True) is False and len(calls("reset_cache")) == 1
    eng.run()
    assert eng.reset_prefix_cache() is True and len(calls("reset_cache")) == 1
    assert eng.reset_prefix_cache(reset_connector=True) is True and len(calls("reset_cache")) == 2


@pytest.mark.parametrize("layout", ["kv_first", "blocks_first", "packed", "cpu_attn", "mla"])
def test_every_layout_holds_the_models_kv(make_vllm_config, make_engine, layout):
    eng = make_engine(make_vllm_config(kv_connector=None, use_mla=layout == "mla"), num_gpu_blocks=16, layout=layout)
    r = eng.add_request(prompt(50), max_tokens=20)
    eng.run_until(lambda: r.num_output_tokens == 19)
    assert eng.verify_request_blocks(r) == 4  # 68 computed tokens: 4 full blocks
    t = eng.worker.kv_caches["model.layers.0.self_attn.attn"]
    assert eng.worker.block_bytes("model.layers.0.self_attn.attn", 1).numel() * 15 == t.numel() - t.numel() // 16


def test_harness_catches_a_connector_that_claims_kv_it_never_loaded(make_vllm_config, make_engine):
    class Liar(NoOpConnector):
        def get_num_new_matched_tokens(self, request, num_computed_tokens):
            return 16, False  # "loaded synchronously" - but nothing writes the block

    eng = make_engine(make_vllm_config(kv_connector="X"), make_connector=lambda c, role, k: Liar(c, role, k))
    eng.add_request(prompt(40), max_tokens=1)
    with pytest.raises(ConnectorContractError, match="read wrong KV"):
        eng.step()


def test_harness_catches_contract_breaches_in_the_scheduler(make_vllm_config, make_engine):
    class AsyncZero(NoOpConnector):
        def get_num_new_matched_tokens(self, request, num_computed_tokens):
            return 0, True

    class WholePromptSync(NoOpConnector):
        def get_num_new_matched_tokens(self, request, num_computed_tokens):
            return request.num_tokens, False

    class StraySend(NoOpConnector):
        def update_connector_output(self, connector_output):
            connector_output.finished_sending = {"nobody"}

    for cls, msg in [(AsyncZero, "n > 0"), (WholePromptSync, "at least one"), (StraySend, "finished_sending")]:
        eng = make_engine(make_vllm_config(kv_connector="X"), make_connector=lambda c, role, k, cls=cls: cls(c, role, k))
        eng.add_request(prompt(32), max_tokens=1)
        with pytest.raises(ConnectorContractError, match=msg):
            eng.run()


@pytest.mark.parametrize("policy", ["recompute", "fail"])
def test_kv_load_failure_policy(make_vllm_config, make_engine, policy):
    """A sync 'load' of two blocks whose second block is reported invalid in the same step:
    vLLM drops the step's output, then truncates to block 1 and recomputes from there
    ("recompute") or finishes the request with an error ("fail")."""

    class BadSecondBlock(NoOpConnector):
        def get_num_new_matched_tokens(self, request, num_computed_tokens):
            return (32, False) if request.num_preemptions == 0 and request.request_id == "r" else (0, False)

        def update_state_after_alloc(self, request, blocks, num_external_tokens):
            if num_external_tokens:
                ids = blocks.get_block_ids()[0]
                Shared.fill(request, ids[:1])  # block 0 really loaded
                Shared.bad = {ids[1]}  # block 1 failed

        def get_block_ids_with_load_errors(self):
            out, Shared.bad = Shared.bad, set()
            return out

    class Shared:
        bad: set = set()
        fill = None

    eng = make_engine(make_vllm_config(kv_connector="X", kv_load_failure_policy=policy),
                      make_connector=lambda c, role, k: BadSecondBlock(c, role, k))
    Shared.fill = lambda req, ids: eng.worker.fill_expected("r", req.all_token_ids, ids, 16)
    r = eng.add_request(prompt(40), max_tokens=2, request_id="r")
    res = eng.step()
    assert r.num_computed_tokens == 16 and r.num_external_computed_tokens == 16
    if policy == "recompute":
        assert res.outputs == []
        eng.run()
        assert list(eng.finished["r"].output_token_ids) == reference_outputs(prompt(40), 2)
    else:
        assert [(o.req_id, o.finish_reason) for o in res.outputs] == [("r", FinishReason.ERROR)]
        assert calls("request_finished")[-1][2:4] == ("r", FinishReason.ERROR)
        eng.run()
    eng.assert_quiescent()


def test_local_prefix_cache_hit_is_passed_to_the_connector(noop):
    eng = noop()
    eng.scheduler.local_hit_fn = lambda req: 20  # rounded down to whole blocks
    r = eng.add_request(prompt(40), max_tokens=2)
    eng.run()
    assert calls("get_num_new_matched_tokens")[0][3] == 16
    assert eng.finished[r.request_id].num_cached_tokens == 16
    assert eng.loaded_tokens_verified(r.request_id) == 0  # read and checked, but not the connector's


@pytest.mark.parametrize("rule, calls_expected", [("is_empty", 2), ("finished_only", 2), ("always", 3)])
def test_no_forward_rule_decides_whether_update_connector_output_runs(noop, rule, calls_expected):
    eng = noop(no_forward_rule=rule)
    eng.add_request(prompt(40), max_tokens=2)
    eng.run()
    assert eng.scheduler.step_index == 3 and eng.scheduler.connector_output_calls == calls_expected


@pytest.mark.parametrize("api", ["metadata", "set", None])
def test_handle_preemptions_follows_the_vllm_version(noop, api):
    eng = noop(preemption_api=api)
    r = eng.add_request(prompt(40), max_tokens=3)
    eng.step()
    eng.preempt(r.request_id)
    eng.run()
    got = [c[2] for c in calls("handle_preemptions")]
    if api == "metadata":
        assert len(got) == eng.scheduler.step_index and all(type(m).__name__ == "KVConnectorMetadata" for m in got)
    elif api == "set":
        assert got == [{r.request_id}]
    else:
        assert got == []


@pytest.mark.parametrize("where", ["update_from_output", "schedule"])
def test_take_events_call_site(noop, where):
    eng = noop(take_events_in=where)
    eng.add_request(prompt(40), max_tokens=1)
    eng.step()
    names = [c[1] for c in NoOpConnector.log]
    before = names[names.index("take_events") - 1]
    assert before == ("build_connector_meta" if where == "schedule" else "update_connector_output")
    assert eng.scheduler.kv_events == ["event"]
