# Sourced by scripts/run, scripts/test and .ci/run: make `uv` available on a bare
# machine (installed with pip if missing) and sync the locked environment.
set -euo pipefail

if ! command -v uv >/dev/null 2>&1; then
    if ! python3 -m uv --version >/dev/null 2>&1; then
        echo "uv not found; installing it with pip" >&2
        python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv
    fi
    uv() { python3 -m uv "$@"; }
fi

uv_sync() {
    uv sync --locked --quiet "$@"
}
