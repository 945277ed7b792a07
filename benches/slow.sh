#!/usr/bin/env bash
# A slow platform (DESIGN §10): N cases on the embedded sandbox whose tenant answers every
# conversion 200 ms late and sends its callbacks 1 s late (a partner's `faults`). Prints the
# wall time at each `--jobs` given, the ideal (cases × 400 ms of API time ÷ jobs + 1 s, the
# formula the standing target uses; the sandbox's click answers at once, so the real API time
# is about 200 ms a case) and the ratio, and the run's peak RSS.
# Usage: benches/slow.sh [CASES] [JOBS…]   (default 2000 cases at --jobs 64, the default)
#   PITCREW_BIN=path times that binary instead of building this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-2000}
shift || true
jobs=("${@:-64}")
. benches/common.sh
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/tenant.yaml" <<'YAML'
partners:
  - id: demo-publisher
    faults: { api_latency: 200ms, callback_delay: 1s }
YAML
matrix_cases "$dir/slow.yaml" slow "$cases"
for j in "${jobs[@]}"; do
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$dir/rss" "$bin" run "$dir/slow.yaml" --sandbox-config "$dir/tenant.yaml" \
    --jobs "$j" --max-cases "$cases" --no-progress --quiet --json "$dir/r.json" > "$dir/out.txt" 2>&1 || {
    echo "pitcrew run failed:"; tail -20 "$dir/out.txt"; exit 1; }
  end=$(date +%s.%N)
  passed=$(python3 -c "import json; print(json.load(open('$dir/r.json'))['summary']['passed'])")
  awk -v s="$start" -v e="$end" -v n="$cases" -v j="$j" -v p="$passed" -v rss="$(cat "$dir/rss")" 'BEGIN {
    wall = e - s; ideal = n * 0.4 / j + 1;
    printf "%d cases at --jobs %d: %.2f s (ideal %.2f s, ratio %.2f), %d passed, peak RSS %.1f MB\n", n, j, wall, ideal, wall / ideal, p, rss / 1024 }'
done
