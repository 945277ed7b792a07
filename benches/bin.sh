# Sourced by the bench scripts: `bin` is the pitcrew to time, `PITCREW_BIN` when set (to
# compare two builds), else this tree's release build (built first).
if [ -n "${PITCREW_BIN:-}" ]; then
  bin=$(realpath "$PITCREW_BIN")
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/pitcrew"
fi
