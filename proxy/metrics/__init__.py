"""Prometheus metrics of the gateway, served at GET /metrics (see exporter.py)."""

from swapgate.proxy.metrics.exporter import GatewayMetrics

__all__ = ["GatewayMetrics"]
