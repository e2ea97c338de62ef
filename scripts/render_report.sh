#!/usr/bin/env bash
# Renders a sweep's report.html to a PNG with headless Chromium (Debian: apt-get install chromium),
# to look at a study without a browser, or to attach it to a note.
#
#   scripts/render_report.sh SWEEP_DIR [OUT.png] [WIDTH]
#
# The page is self-contained (inline SVG, no network), so nothing is fetched. The height is
# generous; Chromium pads the rest of the page with white.
set -euo pipefail
if [[ $# -lt 1 || $# -gt 3 ]]; then
    echo "usage: $0 SWEEP_DIR [OUT.png] [WIDTH]" >&2
    exit 2
fi
dir=$1
page="$dir/report.html"
out=${2:-"$dir/report.png"}
width=${3:-1600}
if [[ ! -f "$page" ]]; then
    echo "$0: $page: no report here (run dptrain sweep --out $dir first)" >&2
    exit 1
fi
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z "$browser" ]]; then
    echo "$0: no chromium found (apt-get install -y chromium)" >&2
    exit 1
fi
# Room for the head, the table (a row is about 28 px) and three rows of two plots.
rows=$(grep -o '<tr>' "$page" | wc -l)
height=$(( 700 + rows * 28 + 3 * 540 ))
abs=$(cd "$(dirname "$page")" && pwd)/report.html
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size="$width,$height" --screenshot="$out" "file://$abs" >/dev/null 2>&1
echo "wrote $out (${width}x$height)"
