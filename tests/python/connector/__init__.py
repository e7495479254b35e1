"""FlexKv's vLLM connector tested against a harness that plays vLLM (stub package in stubs/).

A package so that its conftest and modules do not collide with tests/python's ``conftest``."""
