"""Shared tools every domain may use: cache, logs and metrics, health, HTTP headers, rate limits, version."""
