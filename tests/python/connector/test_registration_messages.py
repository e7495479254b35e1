"""Every field of a registration is checked for type and range before anything reaches the
engine (the C ABI's int32 and int64 would wrap a Python int silently), and a refusal says in
plain words which field is wrong and why, not a Python exception's repr."""

from __future__ import annotations

import json
import os

import pytest

from flexkv.integration.vllm._registration import RegistrationServer

from .registration_support import LAYER, RecordingEngine, message, register, send_line


@pytest.fixture
def server(tmp_path):
    engine = RecordingEngine(2)
    srv = RegistrationServer(str(tmp_path / "r.sock"), 2, engine)
    yield srv, engine
    srv.close()


def refusal(srv, data: bytes) -> str:
    s, reply = send_line(srv.path, data)
    s.close()
    assert reply is not None and reply["ok"] is False, reply
    return reply["error"]


def line(msg) -> bytes:
    return (json.dumps(msg) + "\n").encode()


BIG = 10 ** 30
FIELDS = [
    ({"num_blocks": BIG}, f"num_blocks must be an integer from 1 to 2147483647, got {BIG}"),
    ({"num_blocks": 2 ** 40}, "num_blocks must be an integer from 1 to 2147483647, got 1099511627776"),
    ({"num_blocks": 0}, "num_blocks must be an integer from 1 to 2147483647, got 0"),
    ({"num_blocks": "8"}, "num_blocks must be an integer from 1 to 2147483647, got the string '8'"),
    ({"num_blocks": 8.0}, "num_blocks must be an integer from 1 to 2147483647, got 8.0"),
    ({"num_blocks": True}, "num_blocks must be an integer from 1 to 2147483647, got true"),
    ({"rank": "0"}, "rank must be an integer from 0 to 1023, got the string '0'"),
    ({"rank": None}, "rank must be an integer from 0 to 1023, got null"),
    ({"rank": -1}, "rank must be an integer from 0 to 1023, got -1"),
    ({"rank": 5}, "rank 5 is outside 0..1"),
    ({"world_size": 2 ** 40}, "world_size must be an integer from 1 to 1024, got 1099511627776"),
    ({"world_size": 4}, "rank 0 says the world size is 4, the scheduler 2"),
    ({"protocol": True}, "the registration speaks protocol true; this scheduler speaks protocol 1"),
    ({"protocol": 2}, "the registration speaks protocol 2; this scheduler speaks protocol 1"),
    ({"memory": "disk"}, "memory must be 'host' or 'cuda', got the string 'disk'"),
    ({"layers": {"0": LAYER}}, "layers must be an array of 1 to 1024 layers, got an object"),
    ({"layers": []}, "layers must be an array of 1 to 1024 layers, got 0 layers"),
    ({"layers": [LAYER] * 1025}, "layers must be an array of 1 to 1024 layers, got 1025 layers"),
    ({"layers": [LAYER[:4]]}, "layer 0 must be [base, block_stride, span_bytes, kv_stride, num_kv], got an array of 4"),
    ({"layers": [{"base": 1}]}, "layer 0 must be [base, block_stride, span_bytes, kv_stride, num_kv], got an object"),
    ({"layers": [[LAYER[0], 256, 128, 128, 3]]}, "layer 0's num_kv must be 1 or 2, got 3"),
    ({"layers": [[LAYER[0], 256, -128, 128, 2]]}, "layer 0's span_bytes must be an integer from 1 to 9223372036854775807, got -128"),
    ({"layers": [[LAYER[0], -256, 128, 128, 2]]}, "layer 0's block_stride must be an integer from 0 to 9223372036854775807, got -256"),
    ({"layers": [[LAYER[0], 256, 128, 2 ** 63, 2]]}, "layer 0's kv_stride must be an integer from -9223372036854775808 to 9223372036854775807"),
    ({"layers": [[2 ** 64, 256, 128, 128, 2]]}, "layer 0's base must be an integer from 1 to 18446744073709551615"),
    ({"layers": [[LAYER[0], 2 ** 62, 128, 128, 2]], "num_blocks": 8}, f"layer 0 spans {7 * 2 ** 62 + 256} bytes over 8 blocks, more than a 64-bit offset can address"),
    # The span sizes' sum must fit the engine's int64 block size (it overflowed and crashed the engine).
    ({"layers": [[LAYER[0], 2 ** 62, 2 ** 62, 2 ** 62, 2]] * 2 + [LAYER], "num_blocks": 1},
     "the layers hold 18446744073709551872 bytes per block, more than a 64-bit size can count"),
    ({"cuda_ipc": []}, "cuda_ipc is only for memory 'cuda'"),
    ({"memory": "cuda"}, "the registration has no cuda_ipc field"),
    ({"memory": "cuda", "cuda_ipc": [["ab" * 64, 0, "0000:3b:00.0"]] * 2},
     "cuda_ipc must be an array of one handle per layer (1), got 2 handles"),
    ({"memory": "cuda", "cuda_ipc": [["zz" * 64, 0, "0000:3b:00.0"]]},
     "cuda_ipc 0 must be [handle (128 hex digits), offset, PCI bus id], got a handle that is not 128 hex digits"),
    ({"memory": "cuda", "cuda_ipc": [["ab" * 64, -1, "0000:3b:00.0"]]},
     "cuda_ipc 0's offset must be an integer from 0 to 9223372036854775807, got -1"),
    ({"memory": "cuda", "cuda_ipc": [["ab" * 64, 0, "x" * 40]]},
     "cuda_ipc 0's PCI bus id must be 1 to 31 printable ASCII characters"),
    ({"extra": 1, "more": 2}, "the registration has unknown fields: extra, more"),
]


@pytest.mark.parametrize("fields, why", FIELDS)
def test_a_field_out_of_type_or_range_is_named_in_the_refusal(server, fields, why):
    srv, engine = server
    assert why in refusal(srv, line(message(**fields)))
    assert engine.calls == []


@pytest.mark.parametrize("field", ["protocol", "rank", "world_size", "pid", "num_blocks", "layers"])
def test_a_missing_field_is_named(server, field):
    srv, engine = server
    msg = message()
    del msg[field]
    assert refusal(srv, line(msg)) == f"the registration has no {field} field"


@pytest.mark.parametrize("data, why", [
    (b"not json\n", "the registration is not valid JSON (Expecting value at character 0)"),
    (b'{"rank": 0,\n', "the registration is not valid JSON"),
    (b"[1, 2]\n", "the registration must be a JSON object, got an array"),
    (b'"rank"\n', "the registration must be a JSON object, got the string 'rank'"),
    (b"\xff\xfe\x00garbage\n", "the registration is not UTF-8 text"),
    (b"[" * 100_000 + b"\n", "the registration is not valid JSON (it nests too deeply)"),
    (b'{"rank": ' + b"9" * 5000 + b"}\n", "the registration holds a number of more than 40 digits"),
    (b'{"rank": NaN}\n', "the registration holds NaN, which is not a number"),
    (b"\n", "the registration is empty"),
])
def test_a_line_that_is_not_a_registration_is_refused_in_plain_words(server, data, why):
    srv, engine = server
    assert why in refusal(srv, data)
    assert engine.calls == []


def test_a_long_string_is_shown_shortened(server):
    srv, _ = server
    err = refusal(srv, line(message(memory="h" * 10_000)))
    assert len(err) < 200 and "..." in err


def test_a_valid_registration_after_the_refusals_is_accepted(server):
    srv, engine = server
    for fields, _ in FIELDS[:5]:
        refusal(srv, line(message(**fields)))
    s, reply = register(srv.path, 1)
    assert reply == {"ok": True, "complete": False} and engine.ranks == {1: os.getpid()}
    s.close()
