#!/usr/bin/env bash
# Build the release `weir` of git revision REV in a temporary worktree under
# TARGET_DIR and print the path of a copy of the binary (TARGET_DIR/baseline/weir-SHA).
# The build shares TARGET_DIR with the current one, so crates.io dependencies are
# compiled once; `make bench-targets` builds the current tree AFTER this, so
# TARGET_DIR/release/weir is the current build again. A copy that exists is reused.
# usage: loadgen/scripts/baseline-build.sh REV [TARGET_DIR]
set -euo pipefail
REV=${1:?usage: baseline-build.sh REV [TARGET_DIR]}
TARGET_DIR=$(mkdir -p "${2:-target}" && cd "${2:-target}" && pwd)
sha=$(git rev-parse --verify "$REV^{commit}")
out=$TARGET_DIR/baseline/weir-${sha:0:12}
if [[ ! -x $out ]]; then
  src=$TARGET_DIR/baseline-src
  git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
  git worktree prune
  git worktree add --detach "$src" "$sha" >&2
  (cd "$src" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --bin weir >&2)
  mkdir -p "$TARGET_DIR/baseline"
  cp "$TARGET_DIR/release/weir" "$out"
  git worktree remove --force "$src"
fi
echo "$out"
