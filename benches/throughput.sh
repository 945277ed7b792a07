#!/usr/bin/env bash
# pitcrew's standing benchmark (DESIGN §10), run by hand, not a pass/fail part of CI. Prints,
# for this machine:
#   - end to end: 1k, 10k and 100k generated cases (a matrix, as a nightly's offer × event ×
#     amount is) on the embedded sandbox at default settings with JUnit and JSON written:
#     wall time, cases/s and peak RSS; and 10k cases written out one by one (a big file);
#   - `validate` of a 1,000-case file; a 1-case run's wall time;
#   - callback wake latency p50/p99 (arrival to verdict, pitcrew's own `wake_us` in the JSON
#     report) for cases that really wait (each callback is sent 20 ms after its conversion);
#   - when `hurl` is on PATH: the same click → conversion → callback-log check done by Hurl
#     (`hurl --test --jobs 8`) against one standalone `pitcrew sandbox`, and the same cases run
#     by pitcrew against that sandbox (reading its callback log, as Hurl does) and at its
#     defaults (embedded sandbox, callbacks received), with the ratios.
# Usage: benches/throughput.sh [--quick]   (--quick: no 100k run, fewer repeats)
#   PITCREW_BIN=path times that binary instead of building this tree (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
[ "${1:-}" = "--quick" ] && quick=true
. benches/common.sh
dir=$(mktemp -d)
sandbox_pid=""
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(rustc --version | cut -d' ' -f1-2); pitcrew $(if [ -n "${PITCREW_BIN:-}" ]; then echo "$bin"; else git rev-parse --short HEAD 2>/dev/null || echo '?'; fi)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# A matrix of N generated cases: click, conversion, callback received and its amount checked.
matrix_file() {
  local n=$1 file=$2
  {
    echo "name: bench"
    echo "cases:"
    echo "  - name: \"case {{matrix.i}}\""
    printf "    matrix: { i: ["
    seq -s ", " 1 "$n" | tr -d '\n'
    echo "] }"
    echo "    click: generate"
    echo "    event: install"
    echo "    params: { cnv_amount: \"1.50\" }"
    echo "    expect: { callback: { payload: { conversion.trackSysConversionAmount: \"1.50\" } } }"
    if [ -n "${3:-}" ]; then echo "    $3"; fi
  } > "$file"
}

# N cases written out one by one.
list_file() {
  local n=$1 file=$2
  {
    echo "name: bench"
    echo "cases:"
    for i in $(seq 1 "$n"); do
      printf '  - name: case %s\n    click: generate\n    event: install\n    member: "qa-{{uuid}}"\n    params: { pub_sub_1: "{{case.name}}", cnv_amount: "1.50" }\n    expect: { callback: { within: 5s, payload: { conversion.trackSysConversionAmount: "1.50", conversion.pubSub1: { matches: "^case" } } } }\n' "$i"
    done
  } > "$file"
}

# Runs `pitcrew run FILE ARGS…` with JUnit and JSON; prints "wall_s rss_kb".
timed_run() {
  local file=$1; shift
  /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$bin" run "$file" --no-progress \
    --junit "$dir/junit.xml" --json "$dir/report.json" "$@" > "$dir/out.txt" 2>&1 || {
    echo "pitcrew run failed:"; tail -20 "$dir/out.txt"; exit 1; }
  tail -1 "$dir/time.txt"
}

report() { # label n wall rss
  python3 - "$@" <<'PY'
import sys
label, n, wall, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f"{label}: {n:,} cases in {wall:.2f} s, {n / wall:,.0f} cases/s, peak RSS {rss / 1024:.0f} MB ({rss * 1024 / n / 1024:.1f} KB/case)")
PY
}

sizes="1000 10000 100000"
repeats=3
if $quick; then sizes="1000 10000"; repeats=1; fi
for n in $sizes; do
  matrix_file "$n" "$dir/m$n.yaml"
  best_wall=""; best_rss=""
  runs=$repeats; [ "$n" -ge 100000 ] && runs=1
  for _ in $(seq 1 "$runs"); do
    read -r wall rss < <(timed_run "$dir/m$n.yaml")
    echo "$wall $rss" >> "$dir/runs$n.txt"
  done
  wall=$(cut -d' ' -f1 "$dir/runs$n.txt" | median)
  rss=$(cut -d' ' -f2 "$dir/runs$n.txt" | median)
  report "end to end (median of $runs)" "$n" "$wall" "$rss"
  if [ "$n" = 10000 ]; then
    python3 - "$dir/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w = sorted(c["wake_us"] for c in r["cases"] if c.get("wake_us") is not None)
s = r["summary"]
assert s["passed"] == s["total"], s
if w:
    print(f"  wake latency in that run: p50 {w[len(w)//2]} µs, p99 {w[int(len(w)*0.99)]} µs ({len(w)} cases; most callbacks arrive before their case waits)")
PY
  fi
done

list_file 10000 "$dir/list.yaml"
read -r wall rss < <(timed_run "$dir/list.yaml")
report "end to end, 10k cases written out one by one" 10000 "$wall" "$rss"

list_file 1000 "$dir/list1k.yaml"
for _ in $(seq 1 10); do
  s=$(date +%s%N); "$bin" validate "$dir/list1k.yaml" >/dev/null; e=$(date +%s%N)
  echo $(( (e - s) / 1000 ))
done | median | awk '{printf "validate 1,000 cases: %.1f ms (median of 10)\n", $1/1000}'

matrix_file 1 "$dir/one.yaml"
for _ in $(seq 1 10); do
  s=$(date +%s%N); "$bin" run "$dir/one.yaml" --no-progress >/dev/null; e=$(date +%s%N)
  echo $(( (e - s) / 1000 ))
done | median | awk '{printf "1-case run: %.1f ms wall (median of 10)\n", $1/1000}'

matrix_file 1000 "$dir/wake.yaml" "sandbox: { faults: { callback_delay: 20ms } }"
timed_run "$dir/wake.yaml" > /dev/null
python3 - "$dir/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w = sorted(c["wake_us"] for c in r["cases"] if c.get("wake_us") is not None)
assert r["summary"]["passed"] == r["summary"]["total"], r["summary"]
print(f"wake latency, 1,000 cases each waiting 20 ms for its callback: p50 {w[len(w)//2]} µs, p99 {w[int(len(w)*0.99)]} µs, max {w[-1]} µs")
PY

if command -v hurl >/dev/null 2>&1; then
  n=2000
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" sandbox --listen "127.0.0.1:$port" > "$dir/sandbox.txt" 2>&1 &
  sandbox_pid=$!
  for _ in $(seq 1 100); do grep -q "API on" "$dir/sandbox.txt" 2>/dev/null && break; sleep 0.05; done
  base="http://127.0.0.1:$port/api/v1"
  mkdir -p "$dir/hurl"
  for i in $(seq 1 "$n"); do
    cat > "$dir/hurl/case-$i.hurl" <<HURL
POST {{base}}/tools/clicks
{"offerId": "demo-offer", "publisherMemberId": "hurl-$i-{{run}}"}
HTTP 201
[Captures]
click: jsonpath "\$.data.clickId"

POST {{base}}/tools/conversions
{"clickId": "{{click}}", "eventId": "install", "params": {"cnv_amount": "1.50"}}
HTTP 201
[Captures]
conversion: jsonpath "\$.data.conversionId"

GET {{base}}/conversion-callbacks?conversionId={{conversion}}
[Options]
retry: 50
retry-interval: 20
HTTP 200
[Asserts]
jsonpath "\$.data" count == 1
jsonpath "\$.data[0].outcome" == "Delivered"
jsonpath "\$.data[0].note.conversion.trackSysConversionAmount" == "1.50"
HURL
  done
  s=$(date +%s%N)
  hurl --test --jobs 8 --variable "base=$base" --variable "run=$RANDOM$RANDOM" "$dir"/hurl/*.hurl > "$dir/hurl.txt" 2>&1 || {
    echo "hurl failed:"; tail -20 "$dir/hurl.txt"; exit 1; }
  e=$(date +%s%N)
  hurl_s=$(python3 -c "print(($e - $s) / 1e9)")
  matrix_file "$n" "$dir/same.yaml"
  for _ in 1 2 3; do timed_run "$dir/same.yaml" --target "$base" | cut -d' ' -f1; done | median > "$dir/url.txt"
  for _ in 1 2 3; do timed_run "$dir/same.yaml" | cut -d' ' -f1; done | median > "$dir/embedded.txt"
  python3 - "$n" "$hurl_s" "$(cat "$dir/url.txt")" "$(cat "$dir/embedded.txt")" "$(hurl --version | head -1 | cut -d' ' -f1-2)" <<'PY'
import sys
n, hurl, url, embedded, version = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
print(f"the same {n:,} cases (click → conversion → callback checked), Hurl against one standalone sandbox:")
print(f"  {version}, --test --jobs 8: {hurl:.2f} s, {n / hurl:,.0f} cases/s")
print(f"  pitcrew run --target URL, the same standalone sandbox, callback log (defaults, median of 3): {url:.2f} s, {n / url:,.0f} cases/s: {hurl / url:.1f}× Hurl")
print(f"  pitcrew run, embedded sandbox and receiver (defaults, median of 3): {embedded:.2f} s, {n / embedded:,.0f} cases/s: {hurl / embedded:.1f}× Hurl")
PY
else
  echo "hurl: not on PATH; skipped (cargo install hurl --version 8.0.1 --locked)"
fi
