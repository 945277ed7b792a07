# Sourced by the bench scripts (from the repository's root).
#
# `bin` is the pitcrew to time: `PITCREW_BIN` when set (to compare two builds), else this
# tree's release build (built first).
if [ -n "${PITCREW_BIN:-}" ]; then
  bin=$(realpath "$PITCREW_BIN")
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/pitcrew"
fi

# matrix_cases FILE NAME COUNT: a scenario file of COUNT `install` cases from one matrix.
matrix_cases() {
  {
    echo "name: $2"
    echo "cases:"
    echo '  - name: "case {{matrix.i}}"'
    printf "    matrix: { i: ["
    seq -s ", " 1 "$3" | tr -d '\n'
    echo "] }"
    echo "    event: install"
  } > "$1"
}
