"""An Auth0-compatible tenant emulator for tests, the local run and benchmarks.

    uv run python -m scripts.auth0_emulator --seed demo

It speaks Auth0's HTTP API (OAuth/OIDC, JWKS, Management API v2) so the real clients
run unchanged against it. A dev/test tool: it serves loopback only unless told otherwise.
"""
