#!/usr/bin/env bash
# Screenshots of the built documentation in headless Chromium: the index and
# one gallery page, to look at what a reader sees (layout, figures, math).
#
#   tools/docs_screenshot.sh [HTML_DIR] [OUT_DIR]
#
# HTML_DIR defaults to docs/_build/html (build it first:
# python -m sphinx -W --keep-going -b html docs docs/_build/html); OUT_DIR to
# a new temporary directory.  Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
html="$(realpath "${1:-docs/_build/html}")"
out="${2:-$(mktemp -d)}"
mkdir -p "$out"
out="$(realpath "$out")"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
    echo "docs_screenshot: no chromium on PATH (apt-get install chromium)" >&2
    exit 2
fi
pages=(index.html auto_examples/plot_5_learning_speed.html)
for page in "${pages[@]}"; do
    if [ ! -f "$html/$page" ]; then
        echo "docs_screenshot: $html/$page is missing: build the docs first" >&2
        exit 2
    fi
done
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
for page in "${pages[@]}"; do
    png="$out/$(basename "${page%.html}").png"
    # --no-sandbox: CI and containers often run as root, where the sandbox
    # refuses to start.  A tall window shows the page's figure below its text.
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$profile" --window-size=1280,2000 \
        --virtual-time-budget=5000 --screenshot="$png" "file://$html/$page" \
        >/dev/null 2>&1
    if [ ! -s "$png" ]; then
        echo "docs_screenshot: chromium wrote no screenshot of $page" >&2
        exit 1
    fi
    echo "$png"
done
