"""Workloads for replaying through a prefix cache: a multi-turn chat trace generator
(:mod:`.chat`), its JSON-lines file format (:mod:`.trace_file`) and a plain-Python reference
replay (:mod:`.reference`) that states what a prefix cache must match on it.

``python -m flexkv.workload generate|replay --help`` runs them from the command line.
"""

from .chat import ChatParams, generate, small
from .reference import ReferenceCache, ReplayResult, replay
from .trace_file import cached, read, write

__all__ = ["ChatParams", "generate", "small", "ReferenceCache", "ReplayResult", "replay", "cached", "read", "write"]
