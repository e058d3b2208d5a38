"""Upstream server processes: one owner (BackendPool) starts, stops and health-checks them."""
