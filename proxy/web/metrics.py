"""GET /metrics: the gateway's series in Prometheus's text format (proxy/metrics/)."""

from __future__ import annotations

from blacksheep import Content, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from swapgate.proxy.web.gateway import Gateway

_CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()


async def metrics(gateway: Gateway, _request: Request) -> Response:
    """Every series; GPU memory is read in a thread first (NVML may block). With keys
    configured it needs an admin-scoped key, as the rest of the admin API does."""
    await gateway.metrics.read_gpu(gateway.gpu)
    return Response(200, None, Content(_CONTENT_TYPE, gateway.metrics.render()))
