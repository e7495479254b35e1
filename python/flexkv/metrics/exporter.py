"""The standalone Prometheus endpoint: ``/metrics`` over HTTP, one per process, serving every
engine of the process (an ``engine`` label tells them apart). Each scrape reads the engines'
snapshots then (EngineCollector), so an idle endpoint costs nothing.

Started by the first engine whose configuration says ``enable_metrics`` (``FLEXKV_ENABLE_METRICS=1``),
or by :func:`start`. It binds to 127.0.0.1 unless ``metrics_host`` (``FLEXKV_METRICS_HOST``) says
otherwise: the counters hold no secret, but nobody else needs to read them by default. Without
prometheus_client nothing is served, and one warning says what to install; engines run as usual.
"""

from __future__ import annotations

import logging
import os
import socketserver
import threading
from typing import Any, Mapping, Optional, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .. import _convert as conv

logger = logging.getLogger("flexkv.metrics")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080
INSTALL_HINT = ("install prometheus_client (Debian/Ubuntu: apt-get install python3-prometheus-client; "
                "pip: pip install prometheus-client, or flexkv[metrics])")

_lock = threading.Lock()
_server: Optional["_Server"] = None
_warned_missing = False


class _Server:
    def __init__(self, httpd: WSGIServer, registry: Any) -> None:
        self.httpd, self.registry = httpd, registry
        self.address: Tuple[str, int] = httpd.server_address[:2]
        self.thread = threading.Thread(target=httpd.serve_forever, name="flexkv-metrics", daemon=True)
        self.thread.start()


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds the process at exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (one line per scrape on stderr is noise)
        pass


def _settings(config: Mapping[str, Any], env: Mapping[str, str]) -> Optional[Tuple[str, int]]:
    """(host, port) when the configuration enables the exporter, else None. Keys of the
    (validated) configuration win; a dict configuration reads no environment, so the variables
    are consulted here for whatever it leaves out."""

    def pick(key: str, names: Tuple[str, ...], convert, default):
        if key in config:
            return config[key]
        given = [(n, env[n].strip()) for n in names if env.get(n, "").strip()]
        if len({raw for _, raw in given}) > 1:
            logger.warning("FlexKv metrics: %s=%s wins over %s", given[0][0], given[0][1],
                           ", ".join(f"{n}={raw}" for n, raw in given[1:]))
        for name, raw in given[:1]:
            try:
                return convert(raw)
            except ValueError as e:
                logger.warning("FlexKv metrics: %s=%r: %s; using %r", name, raw, e, default)
                return default
        return default

    if not pick("enable_metrics", ("FLEXKV_ENABLE_METRICS",), conv.to_bool, False):
        return None
    host = pick("metrics_host", ("FLEXKV_METRICS_HOST",), conv.string, DEFAULT_HOST)
    port = pick("metrics_port", ("FLEXKV_METRICS_PORT", "FLEXKV_PY_METRICS_PORT"), conv.port, DEFAULT_PORT)
    return host, port


def engine_created(config: Mapping[str, Any], env: Optional[Mapping[str, str]] = None) -> None:
    """Called for every new engine: starts the endpoint if this configuration asks for one and
    none runs yet. Never raises: metrics must not keep an engine from starting."""
    where = _settings(config, os.environ if env is None else env)
    if where is None:
        return
    with _lock:
        running = _server
    if running is not None:
        if where[1] not in (0, running.address[1]) or where[0] != running.address[0]:
            logger.info("FlexKv metrics: already served on %s:%d; this engine is one more engine label there",
                        *running.address)
        return
    start(*where)


def start(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Optional[Tuple[str, int]]:
    """Serves ``/metrics`` on ``host:port`` (0: a free port) unless it already runs; returns the
    address served, or None when it cannot be (no prometheus_client, the port is taken)."""
    global _server, _warned_missing
    try:
        from prometheus_client import CollectorRegistry, make_wsgi_app

        from ._collector import EngineCollector
    except ImportError:
        with _lock:
            first, _warned_missing = not _warned_missing, True
        if first:
            logger.warning("FlexKv metrics: FLEXKV_ENABLE_METRICS asks for a /metrics endpoint, but the Python "
                           "package prometheus_client is not installed: %s. FlexKv runs without the endpoint.",
                           INSTALL_HINT)
        return None
    with _lock:
        if _server is not None:
            return _server.address
        registry = CollectorRegistry(auto_describe=False)
        registry.register(EngineCollector())
        try:
            httpd = make_server(host, port, make_wsgi_app(registry), _ThreadingServer, handler_class=_QuietHandler)
        except OSError as e:
            logger.warning("FlexKv metrics: cannot serve /metrics on %s:%d (%s); set FLEXKV_METRICS_PORT to a free "
                           "port. FlexKv runs without the endpoint.", host, port, e.strerror or e)
            return None
        _server = _Server(httpd, registry)
        logger.info("FlexKv metrics: serving http://%s:%d/metrics", *_server.address)
        return _server.address


def address() -> Optional[Tuple[str, int]]:
    """(host, port) of the running endpoint, or None."""
    with _lock:
        return _server.address if _server is not None else None


def stop() -> None:
    """Stops the endpoint (tests; a later engine or start() may start it again)."""
    global _server
    with _lock:
        s, _server = _server, None
    if s is not None:
        s.httpd.shutdown()
        s.httpd.server_close()
        s.thread.join(5)
