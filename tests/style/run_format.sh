#!/usr/bin/env bash
# run_format.sh - the formatting check (STYLE.md 2.14): every .c and .h
# under src/ and tests/unit must be what the pinned clang-format makes of
# it with the root .clang-format.  Fails listing the files that differ,
# with a diff excerpt of each and the command that fixes them.
#
# The pin is CLANG_FORMAT_VERSION in scripts/deps.sh (Debian's
# clang-format-NN, which deps.sh installs); another version formats some
# constructs differently, so a different one is refused, not used.  Set
# CLANG_FORMAT to a binary to use another path to the same version.
# Without the tool the check skips (exit 77), except under CI=true.
set -euo pipefail
src=${TERRACE_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
want=$(sed -n 's/^CLANG_FORMAT_VERSION=\([0-9.]*\).*/\1/p' \
  "$src/scripts/deps.sh")
[ -n "$want" ] || { echo "run_format.sh: no CLANG_FORMAT_VERSION in scripts/deps.sh" >&2; exit 1; }
bin=${CLANG_FORMAT:-clang-format-${want%%.*}}
if ! command -v "$bin" >/dev/null 2>&1; then
  echo "run_format.sh: $bin not found (scripts/deps.sh test installs it)" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi
have=$("$bin" --version | sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p')
if [ "$have" != "$want" ]; then
  echo "run_format.sh: $bin is version $have, the pin is $want" >&2
  exit 1
fi

cd "$src"
mapfile -t files < <(find src tests/unit -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
excerpt=20   # diff lines shown per file
differ=()
diffs=$(mktemp)
trap 'rm -f "$diffs" "$diffs.one"' EXIT
for f in "${files[@]}"; do
  if ! "$bin" --style=file "$f" |
       diff -u --label "$f" --label "$f (clang-format $want)" "$f" - \
         >"$diffs.one"; then
    differ+=("$f")
    n=$(grep -c '^[-+][^-+]' "$diffs.one" || true)
    { echo "--- $f: $n lines differ"; head -n $((excerpt + 2)) "$diffs.one" |
        tail -n +3; echo; } >>"$diffs"
  fi
done
rm -f "$diffs.one"
if [ ${#differ[@]} -eq 0 ]; then
  echo "format: ${#files[@]} files match clang-format $want"
  exit 0
fi
echo "format: ${#differ[@]} of ${#files[@]} files differ from clang-format $want:"
printf '  %s\n' "${differ[@]}"
echo
cat "$diffs"
echo "fix with: $bin -i --style=file <file>..."
exit 1
