#!/usr/bin/env bash
# How closely `--rate` holds (DESIGN §10: within 2% over a minute). Runs N cases on the
# embedded sandbox at `--rate R/s`; each case sends two requests (click, conversion), and
# callbacks reach pitcrew's receiver (no log reads), so the run sends 2N requests. Prints the
# wall time, the rate achieved and how far it is from R.
# Usage: benches/rate.sh [R] [SECONDS]   (default 100/s over 60 s)
#   PITCREW_BIN=path times that binary instead of building this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-100}
seconds=${2:-60}
. benches/common.sh
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cases=$((rate * seconds / 2))
matrix_cases "$dir/rate.yaml" rate "$cases"
start=$(date +%s.%N)
"$bin" run "$dir/rate.yaml" --no-progress --quiet --rate "$rate/s" --json "$dir/r.json" > "$dir/out.txt" 2>&1 || {
  echo "pitcrew run failed:"; tail -20 "$dir/out.txt"; exit 1; }
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$((cases * 2))" -v r="$rate" 'BEGIN {
  wall = e - s; got = n / wall;
  printf "--rate %d/s: %d requests in %.2f s: %.2f/s achieved, %+.2f%% from the rate (run start and the last callbacks included)\n", r, n, wall, got, (got - r) / r * 100 }'
