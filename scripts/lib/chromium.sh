# Sourced by scripts/test and .ci/run: the /db-admin browser tests drive Debian's
# Chromium (Playwright's own browser downloads are not used). Installed from the
# machine's packages when missing and we may; otherwise say how.
set -euo pipefail

ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium for the browser tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "the browser tests need /usr/bin/chromium: sudo apt-get install chromium" >&2
        return 1
    fi
}
