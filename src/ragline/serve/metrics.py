"""Prometheus metrics of one app, in a registry of its own (never the process-global one, so
two apps in one process, as in the tests, count separately)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("ragline_http_requests", "HTTP requests by endpoint and status.",
                                ["method", "endpoint", "status"], registry=r)
        self.latency = Histogram("ragline_http_request_duration_seconds",
                                 "Time to complete a request (a streamed answer until its end).",
                                 ["method", "endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("ragline_generated_tokens", "Tokens the LLM generated.",
                              registry=r)
        self.generations = Counter("ragline_generations",
                                   "Answers generated, by outcome (done, error, cancelled).",
                                   ["outcome"], registry=r)
        self.abandoned = Counter("ragline_answers_abandoned",
                                 "Answers whose client went away before the end.", registry=r)
        self.rejected = Counter("ragline_generation_rejected",
                                "Requests refused with 503 because the queue was full.",
                                registry=r)
        self.waiting = Gauge("ragline_generation_queue_waiting",
                             "Requests waiting for the model.", registry=r)
        self.running = Gauge("ragline_generation_running",
                             "Generations running now (0 or 1).", registry=r)
        self.documents = Gauge("ragline_index_documents", "Documents in the index.", registry=r)
        self.chunks = Gauge("ragline_index_chunks", "Chunks in the index.", registry=r)
        self.jobs = Counter("ragline_ingest_jobs", "Upload ingest jobs finished, by status.",
                            ["status"], registry=r)

    def set_counts(self, documents: int, chunks: int) -> None:
        self.documents.set(documents)
        self.chunks.set(chunks)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def endpoint_label(scope: dict[str, Any]) -> str:
    """The route's path template (`/v1/jobs/{job_id}`), never the raw path: bounded labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path or "/"
    if str(scope.get("path", "")).startswith("/static/"):
        return "/static"
    return "unmatched"


class MetricsMiddleware:
    """Pure ASGI (no buffering of streamed bodies): counts and times every HTTP request."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = endpoint_label(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, endpoint, str(status)).inc()
            self.metrics.latency.labels(method, endpoint).observe(time.perf_counter() - start)
