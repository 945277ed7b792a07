#!/usr/bin/env bash
# Load-time figures: `pitcrew validate` of a 1,000-case file (DESIGN §9: under 50 ms), and a
# matrix expanding to 100,000 cases (validate and list: time and peak RSS).
# Usage: benches/validate.sh [RUNS]. Builds the release binary. Not a test: figures go in notes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
cargo build --release --quiet
bin=./target/release/pitcrew
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
{
  echo "name: validate bench"
  echo "vars: { amount: \"1.50\" }"
  echo "cases:"
  for i in $(seq 1 1000); do
    printf '  - name: case %s\n    click: generate\n    event: install\n    member: "qa-{{uuid}}"\n    params: { pub_sub_1: "{{case.name}}", cnv_amount: "{{vars.amount}}" }\n    expect: { callback: { within: 5s, payload: { conversion.trackSysConversionAmount: "{{vars.amount}}", conversion.pubSub1: { matches: "^case" } } } }\n' "$i"
  done
} > "$dir/plain.yaml"
values=$(python3 -c 'print(", ".join(str(i) for i in range(100)))')
cat > "$dir/matrix.yaml" <<YAML
name: matrix bench
cases:
  - name: "{{matrix.a}}-{{matrix.b}}-{{matrix.c}}"
    matrix: { a: [$values], b: [$values], c: [$values] }
    event: install
    params: { pub_sub_1: "{{matrix.a}}", pub_sub_2: "{{matrix.b}}", pub_sub_3: "{{matrix.c}}" }
YAML
# The matrix is 100 × 100 × 100 = 1,000,000: over the guard unless raised; 100,000 with c: 10.
python3 - "$dir/matrix.yaml" <<'PY'
import sys, re
p = sys.argv[1]
s = open(p).read()
s = s.replace("c: [" + ", ".join(str(i) for i in range(100)) + "]", "c: [" + ", ".join(str(i) for i in range(10)) + "]")
open(p, "w").write(s)
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() {
  for _ in $(seq 1 "$runs"); do
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    echo $(( (e - s) / 1000000 ))
  done | median
}
rss_mb() {
  /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1/1024}'
}
echo "validate 1,000 cases: $(time_ms $bin validate "$dir/plain.yaml") ms (median of $runs), peak RSS $(rss_mb $bin validate "$dir/plain.yaml") MB"
echo "validate matrix of 100,000: $(time_ms $bin validate "$dir/matrix.yaml") ms, peak RSS $(rss_mb $bin validate "$dir/matrix.yaml") MB"
echo "list matrix of 100,000: $(time_ms $bin list "$dir/matrix.yaml") ms, peak RSS $(rss_mb $bin list "$dir/matrix.yaml") MB"
