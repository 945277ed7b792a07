#!/usr/bin/env bash
# End-to-end throughput on the embedded sandbox: N generated cases (click, conversion, callback
# received and checked, JUnit + JSON written). Usage: benches/throughput.sh [N] [JOBS]
# Builds the release binary; prints wall time and cases/s. Not a test: figures go in issue notes.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2000}"
jobs="${2:-256}"
cargo build --release --quiet
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
{
  echo "name: throughput"
  echo "cases:"
  for i in $(seq 1 "$n"); do
    printf '  - name: case %s\n    click: generate\n    event: install\n    params: { cnv_amount: "1.50" }\n    expect: { callback: { payload: { conversion.trackSysConversionAmount: "1.50" } } }\n' "$i"
  done
} > "$dir/cases.yaml"
start=$(date +%s.%N)
./target/release/pitcrew validate "$dir/cases.yaml" >/dev/null
mid=$(date +%s.%N)
./target/release/pitcrew run "$dir/cases.yaml" --jobs "$jobs" --no-progress \
  --junit "$dir/junit.xml" --json "$dir/report.json" > "$dir/out.txt"
end=$(date +%s.%N)
tail -1 "$dir/out.txt"
python3 - "$start" "$mid" "$end" "$n" <<'PY'
import sys
start, mid, end, n = map(float, sys.argv[1:])
print(f"validate {int(n)} cases: {(mid-start)*1000:.0f} ms")
print(f"run {int(n)} cases: {end-mid:.2f} s wall, {n/(end-mid):.0f} cases/s")
PY
