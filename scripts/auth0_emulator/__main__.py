"""Command line: start an emulated Auth0 tenant on loopback."""

import argparse
import json
import signal
import sys
import threading

from scripts.auth0_emulator.limits import PRESETS, Faults
from scripts.auth0_emulator.seed import DEMO_PASSWORD, seed_bench, seed_demo, seed_roles
from scripts.auth0_emulator.server import EmulatorServer


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.auth0_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback only unless --allow-remote")
    parser.add_argument("--port", type=int, default=9010)
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="serve a non-loopback address (never in production)",
    )
    parser.add_argument("--seed", choices=["none", "roles", "demo", "bench"], default="demo")
    parser.add_argument(
        "--users", type=int, default=200, help="ordinary users in the demo or bench tenant"
    )
    parser.add_argument("--rate-limit", choices=sorted(PRESETS), default="off")
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction of Management API calls answered 5xx",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-exports", action="store_true")
    parser.add_argument(
        "--no-exports", action="store_true", help="refuse export jobs, like the Free plan"
    )
    parser.add_argument(
        "--public-url",
        help="the URL clients reach it at (issuer and discovery), e.g. http://auth0-emulator:9010",
    )
    parser.add_argument(
        "--custom-domain",
        nargs="?",
        const="true",
        help="serve a custom domain too (bare: http://localhost:<port>; or a URL)",
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="accept any <host>/api/v2/ audience and any scopes (not how Auth0 behaves)",
    )
    parser.add_argument("--audience", default="https://api.aai-backend.local")
    parser.add_argument("--client-id", default="dev-management-client")
    parser.add_argument("--client-secret", default="dev-management-secret")
    args = parser.parse_args()

    faults = Faults(
        error_rate=args.error_rate,
        latency_ms=args.latency_ms,
        fail_exports=args.fail_exports,
        exports_enabled=not args.no_exports,
    )
    try:
        server = EmulatorServer(
            host=args.host,
            port=args.port,
            audience=args.audience,
            rate_limit=args.rate_limit,
            faults=faults,
            allow_remote=args.allow_remote,
            public_url=args.public_url,
            custom_domain=True if args.custom_domain == "true" else (args.custom_domain or False),
            strict=not args.lenient,
            management_client_id=args.client_id,
            management_client_secret=args.client_secret,
        )
    except ValueError as exc:
        print(f"auth0-emulator: {exc}", file=sys.stderr)
        return 2
    summary: dict[str, object] = {}
    if args.seed == "roles":
        seed_roles(server.tenant)
    elif args.seed == "demo":
        summary = seed_demo(server.tenant, users=args.users)
    elif args.seed == "bench":
        bench = seed_bench(server.tenant, users=args.users)
        print(f"  bench tenant: {bench['users']} users, role members {bench['members']}")
    server.start()
    custom = f", custom domain {server.custom_url}" if server.custom_url else ""
    print(
        f"Auth0 emulator at {server.base_url}{custom} (rate limit {args.rate_limit}"
        f"{', lenient' if args.lenient else ''})"
    )
    print(f"  management client: {args.client_id} / {args.client_secret}")
    if summary:
        admin_token = server.tenant.mint_access_token(str(summary["admin"]), expires_in=86400)
        print(f"  {summary['users']} users; demo password {DEMO_PASSWORD}")
        print(f"  admin access token (24h):\n{admin_token}")
        print(json.dumps({"admin": summary["admin"]}))
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
