"""Reusable helpers for tests: process spawning and reaping, readiness polling, HTTP."""
