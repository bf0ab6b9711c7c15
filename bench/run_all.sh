#!/usr/bin/env bash
# run_all.sh - build once (release), run every benchmark and append a dated
# section (date, machine, commit, each benchmark's table) to
# bench/RESULTS.md.  A benchmark that fails is recorded as failed with the
# end of its stderr; the others still run.  Full logs: bench/last-run.log.
#
#   bench/run_all.sh [http_read state_io idle_rss]   (default: all three)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

HERE=$BENCH_ROOT/bench
RESULTS=$HERE/RESULTS.md
LOG=$HERE/last-run.log
BENCHES=("$@")
[ ${#BENCHES[@]} -eq 0 ] && BENCHES=(http_read state_io idle_rss)

bench_tools
bench_build
export BENCH_NO_BUILD=1

SECTION=$BENCH_TMP/section.md
{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — ${BENCHES[*]}"
  echo
  bench_machine
  echo "- build: ${BENCH_BUILD#"$BENCH_ROOT"/} (CMAKE_BUILD_TYPE=Release, no sanitizers)"
  echo
} >"$SECTION"

: >"$LOG"
rc=0
for b in "${BENCHES[@]}"; do
  blog "running $b"
  out=$BENCH_TMP/$b.md
  start=$(date +%s)
  if "$HERE/$b.sh" >"$out" 2>>"$LOG"; then
    cat "$out" >>"$SECTION"
  else
    code=$?
    rc=1
    {
      echo "### $b: FAILED (exit $code)"
      echo
      echo '```'
      # no paths of this machine in RESULTS.md
      tail -n 15 "$LOG" | sed -e "s|$BENCH_ROOT/||g" -e "s|$BENCH_TMP|BENCH_TMP|g" \
        -e "s|${BENCH_TMPDIR:-/tmp}/terrace-bench\.[A-Za-z0-9]*|BENCH_TMP|g"
      echo '```'
      echo
    } >>"$SECTION"
  fi
  blog "$b took $(( $(date +%s) - start )) s"
done

if [ ! -f "$RESULTS" ]; then
  printf '# Terrace benchmark results\n\nAppended by bench/run_all.sh;' \
    >"$RESULTS"
  printf ' see bench/README.md for what each benchmark measures.\n' \
    >>"$RESULTS"
fi
cat "$SECTION" >>"$RESULTS"
cat "$SECTION"
blog "appended to $RESULTS"
exit $rc
