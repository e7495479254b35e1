"""Test stub of the `vllm` package: only the modules a KV connector imports, with the
signatures and behaviour of vLLM's v1 KV connector interface (2026-era vLLM unless a
module says otherwise). Not a vLLM: there is no model, no GPU, no engine here; the scheduler
and worker loops that drive a connector live in tests/python/connector/harness.py."""

__version__ = "0.0.0-stub"
