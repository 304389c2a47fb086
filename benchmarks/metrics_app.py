"""The app ``benchmarks/metrics.py`` serves with uvicorn: a small cached route on memory,
with the metrics of ``AIOCACHE_EXT_METRICS`` (``off``, ``prometheus``,
``opentelemetry``) on, and Prometheus's ``/metrics``."""

from __future__ import annotations

import os

from aiocache import Cache
from fastapi import FastAPI
from prometheus_client import make_asgi_app
from starlette.responses import JSONResponse

from aiocache_ext import stream_cached

PAYLOAD = {"id": 42, "name": "Ada", "roles": ["admin", "editor"]}

app = FastAPI()
app.mount("/metrics", make_asgi_app())


@app.get("/items/{item_id}")
@stream_cached(ttl=600, cache=Cache(Cache.MEMORY))
async def item(item_id: int) -> JSONResponse:
    return JSONResponse({**PAYLOAD, "id": item_id})


def _enable(which: str) -> None:
    if which == "prometheus":
        from aiocache_ext.contrib import prometheus

        prometheus.enable()
    elif which == "opentelemetry":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from aiocache_ext.contrib import opentelemetry

        opentelemetry.enable(MeterProvider(metric_readers=[InMemoryMetricReader()]))


_enable(os.environ.get("AIOCACHE_EXT_METRICS", "off"))
