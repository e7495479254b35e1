"""docs/configuration.md names every key and environment variable the package knows, so the
documentation cannot silently fall behind the tables in flexkv.config and _config_compat."""

from __future__ import annotations

from conftest import REPO
from flexkv import _config_compat as compat
from flexkv import config


def test_every_key_and_variable_is_documented():
    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    names = (list(config.ENGINE_KEYS) + list(config.CONNECTOR_KEYS) + list(config.SWITCH_KEYS)
             + list(config.METRICS_KEYS) + list(compat.GATES) + list(compat.OFF_ONLY) + list(compat.ALIASES) + list(compat.NO_EFFECT) + list(compat.SECTIONS)
             + list(compat.KNOWN_ENV) + ["ENABLE_FLEXKV"])
    missing = [n for n in names if f"`{n}`" not in doc]
    assert missing == []
