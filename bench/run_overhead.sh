#!/usr/bin/env bash
# run_overhead.sh - what a remote apply through Terrace costs over a plain
# local apply: `tofu apply -auto-approve` of the same 20-resource
# `terraform_data` configuration, timed with hyperfine in one run,
#   (a) through Terrace: cloud block, workspace in execution mode "remote",
#       so plan and apply run on the demo daemon's in-process executor;
#   (b) raw: no backend block (local backend, state in the directory);
#   (c) for context, through Terrace in execution mode "local": the CLI
#       plans and applies itself and only the state (lock, read, write)
#       goes through Terrace;
#   (d) the same remote apply driven through the TFE API with go-tfe
#       (bench/tfe-apply: configuration version, upload, run with
#       auto-apply, both logs read), polling every 5 ms where the stock
#       CLI sleeps 0.5 s + 1 s + 1 s: what Terrace itself adds.
#   (f) raw tofu in a run's shape, the floor of any server that keeps a
#       run's phases as TFE does: in a fresh working directory (local
#       backend, the state file kept) `tofu init`, `tofu plan -out`,
#       `tofu apply` of that plan; three processes where (b) is one.
#   (b') and (f') the same as (b) and (f) with Go's collector set as
#       Terrace sets it for a run's processes by default (GOGC=800,
#       GOMEMLIMIT=512MiB, README "Limits"), so Terrace's added time is
#       shown both over raw tofu as users run it and on equal footing.
# Every timed run really applies: a --prepare command bumps a counter and
# each command passes `-var n=<counter>`; every resource has
# `triggers_replace = var.n`, so each apply destroys and re-creates all 20
# resources on every side.  Overhead = median(a) - median(b) and
# median(d) - median(b); target <= 0.5 s.  Afterwards the server-side phases of the timed remote runs
# (status-timestamps), a few more applies under `perf record` of the
# sched tracepoints (each sandboxed tofu process) and the daemon log
# timeline of the last one show where the time goes.  Prints a markdown
# section on stdout.
#
# With BENCH_BASELINE=<commit>, that commit is built too and run as a
# second demo daemon, and (d) against it is timed in the same hyperfine
# run: this commit against a baseline, side by side.
#
# The peer: when bench/otf.sh finds an otfd (OTFD_BIN, PATH, OTF_SRC or
# one built before), (e) the same API-driven remote apply against otfd
# (its built-in runner, engine tofu, the same tofu binary put where otfd
# keeps its engine downloads, its own PostgreSQL) is timed in the same
# hyperfine run, and both servers' added time over raw tofu is compared
# (goal: Terrace's <= 1/3 of otfd's).  BENCH_OTF=0 leaves it out.
#
#   bench/run_overhead.sh   (BENCH_RUNS=10, BENCH_WARMUP=1,
#                            BENCH_TRACE_RUNS=3 applies under perf,
#                            BENCH_CPU_RUNS=5, BENCH_BASELINE unset,
#                            BENCH_OTF=1, BENCH_TERRACE_ARGS unset)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/otf.sh"

RUNS=${BENCH_RUNS:-10}
WARMUP=${BENCH_WARMUP:-1}
TRACE_RUNS=${BENCH_TRACE_RUNS:-3}
TARGET_S=0.5
NRES=20
HELPER=$BENCH_ROOT/bench/run_timing.py
TOFU=${TOFU_BIN:-${TERRACE_CACHE:-$HOME/.cache/terrace}/tofu-1.10.10/tofu}

PERF_PID=
# stop perf (by its pid) on any exit, before lib.sh's cleanup
trap 'if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID" 2>/dev/null;
  wait "$PERF_PID"; fi; bench_cleanup' EXIT

bench_tools
bench_build
[ -x "$TOFU" ] || { echo "tofu binary missing: $TOFU" >&2; exit 1; }
command -v go >/dev/null || { echo "go is needed for bench/tfe-apply" >&2; exit 1; }
DRIVER=$BENCH_TMP/tfe-apply
blog "building bench/tfe-apply"
(cd "$BENCH_ROOT/bench/tfe-apply" && go build -o "$DRIVER" .)
BASELINE=${BENCH_BASELINE:-}
if [ -n "$BASELINE" ]; then
  BASE_REV=$(git -C "$BENCH_ROOT" rev-parse --short=12 "$BASELINE")
  bench_build_rev "$BASELINE"
  MAIN_BUILD=$BENCH_BUILD
  BENCH_BUILD=$REV_BUILD
  bench_start baseline demo --tofu-bin "$TOFU"
  BENCH_BUILD=$MAIN_BUILD
  api POST /api/v2/organizations "$(jq -nc '{data:{type:"organizations",
    attributes:{name:"bench",email:"bench@example.com"}}}')" >/dev/null
  api POST /api/v2/organizations/bench/workspaces "$(jq -nc '{data:{
    type:"workspaces",attributes:{name:"ws-api","execution-mode":"remote"}}}')" \
    >/dev/null
  B_ENV="env TFE_ADDRESS=$D_URL TFE_TOKEN=$D_TOKEN SSL_CERT_FILE=$D_CA"
fi
ON="otfd, remote execution via the API"
OTF_NOTE="otfd: not measured (BENCH_OTF=0, or no binary; see bench/otf.sh)"
O_ENV=
O_FLAGS=
if [ "${BENCH_OTF:-1}" != 0 ] && otf_find; then
  # otfd's runner finds the engine it would download already in place
  OTF_ENGINES=$BENCH_TMP/otf-engines
  OTF_TOFU_VERSION=$("$TOFU" version | sed -n '1s/^OpenTofu v\([0-9.]*\).*/\1/p')
  mkdir -p "$OTF_ENGINES/$OTF_TOFU_VERSION"
  cp "$TOFU" "$OTF_ENGINES/$OTF_TOFU_VERSION/tofu"
  OTFD_ARGS=(--default-engine tofu --engine-bins-dir "$OTF_ENGINES")
  otf_start overhead-otf
  blog "otfd $OTF_VERSION at $D_URL"
  api POST /api/v2/organizations "$(jq -nc '{data:{type:"organizations",
    attributes:{name:"bench",email:"bench@example.com"}}}')" >/dev/null
  api POST /api/v2/organizations/bench/workspaces "$(jq -nc \
    --arg v "$OTF_TOFU_VERSION" '{data:{type:"workspaces",
    attributes:{name:"ws-api","execution-mode":"remote",
    "terraform-version":$v}}}')" >/dev/null
  O_ENV="env TFE_ADDRESS=$D_URL TFE_TOKEN=$D_TOKEN SSL_CERT_FILE=$D_CA"
  O_FLAGS=-counts-from-log
  O_PID=$D_PID
  OTF_NOTE="otfd: $OTF_VERSION, built from its source tag, on its own PostgreSQL, engine tofu $OTF_TOFU_VERSION"
fi
# BENCH_TERRACE_ARGS: more demo flags, for experiments (for example
# "--bwrap none --allow-unsandboxed-runs on" with BENCH_TRACE_RUNS=0)
# shellcheck disable=SC2086
bench_start overhead demo --tofu-bin "$TOFU" ${BENCH_TERRACE_ARGS:-}
grep -h 'executor:\|sandbox:' "$D_LOG" >&2 || true
HOSTPORT=${D_URL#https://}

api POST /api/v2/organizations "$(jq -nc '{data:{type:"organizations",
  attributes:{name:"bench",email:"bench@example.com"}}}')" >/dev/null
ws_create() {
  api POST /api/v2/organizations/bench/workspaces \
    "$(jq -nc --arg n "$1" --arg m "$2" '{data:{type:"workspaces",
      attributes:{name:$n,"execution-mode":$m}}}')" | jq -r .data.id
}
WS_REMOTE=$(ws_create ws-remote remote)
WS_API=$(ws_create ws-api remote)
ws_create ws-state local >/dev/null

# One HOME and CLI config for every side (credentials for the daemon; the
# raw side simply does not use them).  No TF_LOG.
W=$BENCH_TMP/tf
mkdir -p "$W/home" "$W/remote" "$W/raw" "$W/state" "$W/api"
cat >"$W/home/tofurc" <<EOF
disable_checkpoint = true
credentials "$HOSTPORT" {
  token = "$D_TOKEN"
}
EOF
export HOME=$W/home TF_CLI_CONFIG_FILE=$W/home/tofurc SSL_CERT_FILE=$D_CA \
  TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TFE_ADDRESS=$D_URL TFE_TOKEN=$D_TOKEN
unset TF_LOG TF_LOG_PATH
TOFU_VERSION=$("$TOFU" version | sed -n 1p)

CONFIG="variable \"n\" {
  type    = string
  default = \"0\"
}

resource \"terraform_data\" \"r\" {
  count            = $NRES
  input            = \"\${var.n}-\${count.index}\"
  triggers_replace = var.n
}"
cloud_block() {
  cat <<EOF
terraform {
  cloud {
    hostname     = "$HOSTPORT"
    organization = "bench"
    workspaces {
      name = "$1"
    }
  }
}

EOF
}
{ cloud_block ws-remote; echo "$CONFIG"; } >"$W/remote/main.tf"
{ cloud_block ws-state; echo "$CONFIG"; } >"$W/state/main.tf"
echo "$CONFIG" >"$W/raw/main.tf"
mkdir -p "$W/shape"
echo "$CONFIG" >"$W/shape/main.tf"
echo "$CONFIG" >"$W/api/main.tf"

COUNTER=$W/counter
echo 0 >"$COUNTER"
APPLY="$TOFU apply -auto-approve -input=false -no-color"
# (f): a run's three processes in a fresh working directory (the state
# file stays, as a server would bring it); N is the counter's value
SHAPE="rm -rf .terraform .terraform.lock.hcl run.tfplan && $TOFU init \
-input=false -no-color >/dev/null && $TOFU plan -input=false -no-color \
-out=run.tfplan -var n=N >/dev/null && $APPLY run.tfplan"

# apply_check DIR: one untimed apply with a new n; it must replace all.
apply_check() {
  local n out
  n=$(( $(cat "$COUNTER") + 1 ))
  echo "$n" >"$COUNTER"
  out=$(cd "$1" && $APPLY -var "n=$n" 2>&1) || {
    echo "$out" >&2
    echo "apply in $1 failed" >&2
    return 1
  }
  grep -q "Apply complete! Resources: $NRES added, 0 changed, $2 destroyed" \
    <<<"$out" || {
    echo "$out" | tail -n 20 >&2
    echo "apply in $1 did not add $NRES and destroy $2" >&2
    return 1
  }
}

# api_check DESTROYED: the same through the API driver.
API="$DRIVER -org bench -workspace ws-api -dir $W/api -expect-added $NRES"
api_check() {
  local n
  n=$(( $(cat "$COUNTER") + 1 ))
  echo "$n" >"$COUNTER"
  $API -expect-destroyed "$1" -var "n=$n" >/dev/null
}

for d in remote raw state; do
  blog "tofu init + first apply in $d"
  (cd "$W/$d" && "$TOFU" init -input=false -no-color >/dev/null)
  apply_check "$W/$d" 0
  apply_check "$W/$d" "$NRES"
done
blog "a run's shape in $W/shape, twice"
for _ in 1 2; do
  n=$(( $(cat "$COUNTER") + 1 ))
  echo "$n" >"$COUNTER"
  (cd "$W/shape" && eval "${SHAPE//var n=N/var n=$n}") >/dev/null
done
blog "first applies through the API driver"
api_check 0
api_check "$NRES"
BN="baseline ${BASE_REV:-}, remote execution via the API"
HF_OTF=()
if [ -n "$O_ENV" ]; then
  blog "first applies through the API driver against otfd"
  $O_ENV $API $O_FLAGS -expect-destroyed 0 -var n=1 >/dev/null
  $O_ENV $API $O_FLAGS -expect-destroyed "$NRES" -var n=2 >/dev/null
  HF_OTF=(-n "$ON" "$O_ENV $API $O_FLAGS -expect-destroyed $NRES -var n=\$(cat $COUNTER)")
fi
HF_BASE=()
if [ -n "$BASELINE" ]; then
  $B_ENV $API -expect-destroyed 0 -var n=1 >/dev/null
  $B_ENV $API -expect-destroyed "$NRES" -var n=2 >/dev/null
  HF_BASE=(-n "$BN" "$B_ENV $API -expect-destroyed $NRES -var n=\$(cat $COUNTER)")
fi

# (b') and (f'): Go's collector as Terrace sets it for runs
RUN_GC="env GOGC=800 GOMEMLIMIT=512MiB"
RGN="raw tofu, local backend, Terrace's GC settings"
FGN="raw tofu, a run's shape, Terrace's GC settings"
SHAPE_GC=${SHAPE//"$TOFU "/"$RUN_GC $TOFU "}
blog "hyperfine: $RUNS runs after $WARMUP warm-up per command"
HF_JSON=$BENCH_TMP/hf.json
hyperfine --style basic --runs "$RUNS" --warmup "$WARMUP" \
  --prepare "echo \$(( \$(cat $COUNTER) + 1 )) > $COUNTER" \
  --export-json "$HF_JSON" \
  -n "Terrace, remote execution" \
  "cd $W/remote && $APPLY -var n=\$(cat $COUNTER)" \
  -n "raw tofu, local backend" \
  "cd $W/raw && $APPLY -var n=\$(cat $COUNTER)" \
  -n "Terrace, local execution (state only)" \
  "cd $W/state && $APPLY -var n=\$(cat $COUNTER)" \
  -n "Terrace, remote execution via the API" \
  "$API -expect-destroyed $NRES -var n=\$(cat $COUNTER)" \
  -n "raw tofu, a run's shape (init, plan -out, apply of the plan)" \
  "cd $W/shape && ${SHAPE//var n=N/var n=\$(cat $COUNTER)}" \
  -n "$RGN" "cd $W/raw && $RUN_GC $APPLY -var n=\$(cat $COUNTER)" \
  -n "$FGN" "cd $W/shape && ${SHAPE_GC//var n=N/var n=\$(cat $COUNTER)}" \
  ${HF_BASE[@]+"${HF_BASE[@]}"} ${HF_OTF[@]+"${HF_OTF[@]}"} >&2

# The timed commands were the same as these checks, which still replace
# everything after the timed runs.
grep -q "Apply complete! Resources: $NRES added, 0 changed, $NRES destroyed" \
  < <(cd "$W/shape" && n=$(( $(cat "$COUNTER") + 1 )) && echo "$n" >"$COUNTER" &&
      eval "${SHAPE//var n=N/var n=$n}" 2>&1) || {
  echo "the run-shaped raw apply did not replace everything" >&2
  exit 1
}
for d in raw state remote; do
  apply_check "$W/$d" "$NRES"
done
api_check "$NRES"
if [ -n "$O_ENV" ]; then
  $O_ENV $API $O_FLAGS -expect-destroyed "$NRES" -var "n=$(cat "$COUNTER")" >/dev/null
fi

# CPU per API-driven apply on the server side, which a loaded machine
# does not inflate the way it does wall time: utime + stime of the
# daemon and of its reaped children (the executor's bwrap and tofu;
# otfd's tofu), over CPU_RUNS applies one after the other.
CPU_RUNS=${BENCH_CPU_RUNS:-5}
CLK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
# cpu_per_apply PID CMD...: seconds per apply
cpu_per_apply() {
  local pid=$1 before after i n
  shift
  before=$(cpu_ticks "$pid")
  for i in $(seq 1 "$CPU_RUNS"); do
    n=$(( $(cat "$COUNTER") + 1 ))
    echo "$n" >"$COUNTER"
    "$@" -expect-destroyed "$NRES" -var "n=$n" >/dev/null
  done
  after=$(cpu_ticks "$pid")
  awk -v d=$(( after - before )) -v k="$CLK" -v r="$CPU_RUNS" \
    'BEGIN { printf "%.3f", d / k / r }'
}
blog "server CPU over $CPU_RUNS API-driven applies per server"
CPU_T=$(cpu_per_apply "$D_PID" $API)
CPU_O=
if [ -n "$O_ENV" ]; then
  CPU_O=$(cpu_per_apply "$O_PID" $O_ENV $API $O_FLAGS)
fi

# A few more remote applies with the sched tracepoints recorded (kernel
# events, no ptrace): each sandboxed tofu process's start and end.
STEPS="(perf not available: no per-step breakdown)"
TRACED=0
if [ "$TRACE_RUNS" -gt 0 ] && command -v perf >/dev/null &&
   perf record -q -k mono -e sched:sched_process_exec -a \
     -o "$BENCH_TMP/probe.data" -- true >/dev/null 2>&1; then
  OFFSET=$(python3 -c \
    'import time; print((time.time() - time.monotonic()) * 1000)')
  perf record -q -k mono -e sched:sched_process_fork \
    -e sched:sched_process_exec -e sched:sched_process_exit -a \
    -o "$BENCH_TMP/perf.data" >/dev/null 2>&1 &
  PERF_PID=$!
  sleep 1
  blog "$TRACE_RUNS remote applies under perf record"
  for i in $(seq 1 "$TRACE_RUNS"); do
    apply_check "$W/remote" "$NRES" || break
    TRACED=$i
  done
  kill -INT "$PERF_PID"
  wait "$PERF_PID" || true
  PERF_PID=
  perf script -i "$BENCH_TMP/perf.data" -F pid,tid,time,event,trace \
    >"$BENCH_TMP/perf.txt" 2>/dev/null
  STEPS=$(python3 "$HELPER" steps-report "$BENCH_TMP/perf.txt" "$D_PID" \
    "$OFFSET" "$D_LOG")
fi
cp "$D_LOG" "$BENCH_TMP/daemon.log"
TIMELINE=$(python3 "$HELPER" cli-timeline "$BENCH_TMP/daemon.log")
# The timed remote runs: the RUNS runs before the checks that followed.
BREAKDOWN=$(python3 "$HELPER" runs-report "$D_URL" "$D_CA" "$D_TOKEN" \
  "$WS_REMOTE" "$RUNS" $(( 1 + TRACED )))
# and those of the API driver (all but the check after them)
API_BREAKDOWN=$(python3 "$HELPER" runs-report "$D_URL" "$D_CA" "$D_TOKEN" \
  "$WS_API" "$RUNS" 1)

# hyperfine figures of one command: median mean stddev min max (s)
hf() {
  jq -r --arg n "$1" '.results[] | select(.command == $n) |
    [.median, .mean, .stddev, .min, .max] | @tsv' "$HF_JSON"
}
row() {
  hf "$1" | awk -v n="$1" -F'\t' '{
    printf "| %s | %.3f | %.3f | %.3f | %.3f | %.3f |\n",
      n, $1, $2, $3, $4, $5 }'
}
TN="Terrace, remote execution"
RN="raw tofu, local backend"
SN="Terrace, local execution (state only)"
AN="Terrace, remote execution via the API"
FN="raw tofu, a run's shape (init, plan -out, apply of the plan)"
read -r FM _ < <(hf "$FN")
read -r AM AMEAN _ < <(hf "$AN")
read -r TM TMEAN _ < <(hf "$TN")
read -r RM RMEAN _ < <(hf "$RN")
read -r SM _ < <(hf "$SN")
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
OVER=$(calc "$TM - $RM")
OVER_MEAN=$(calc "$TMEAN - $RMEAN")
SOVER=$(calc "$SM - $RM")
verdict() {
  awk -v o="$1" -v t="$TARGET_S" 'BEGIN {
    if (o > t) printf "missed by %.3f s", o - t; else printf "met" }'
}
VERDICT=$(verdict "$OVER")
AOVER=$(calc "$AM - $RM")
AOVER_MEAN=$(calc "$AMEAN - $RMEAN")
AVERDICT=$(verdict "$AOVER")
ASERVER=$(grep -m1 'created-at → applied-at' <<<"$API_BREAKDOWN" |
  awk -F'|' '{ printf "%.0f", $4 }')
# The stock CLI's fixed waits (OpenTofu internal/cloud): 500 ms before it
# first reads the configuration version back, and backoff(1000, 3000, 0)
# = 1 s before the first run read of each of waitForRun(plan) and
# waitForRun(apply).
SLEEPS=2.5
REST=$(calc "$TM - $SLEEPS")
# median created-at -> applied-at of the timed runs, ms
SERVER=$(grep -m1 'created-at → applied-at' <<<"$BREAKDOWN" |
  awk -F'|' '{ printf "%.0f", $4 }')
SERVER_OVER=$(calc "$SERVER / 1000 - $RM")
PLAN=$(grep -m1 'planning-at → planned-at' <<<"$BREAKDOWN" |
  awk -F'|' '{ printf "%.0f", $4 }')
APPLYT=$(grep -m1 'applying-at → applied-at' <<<"$BREAKDOWN" |
  awk -F'|' '{ printf "%.0f", $4 }')

cat <<EOF
### Remote apply overhead (demo, SQLite)

\`tofu apply -auto-approve -input=false -no-color -var n=<counter>\`
($TOFU_VERSION) of $NRES \`terraform_data\` resources, each with
\`triggers_replace = var.n\`; a hyperfine \`--prepare\` bumps the counter
before every run, so every timed run destroys and re-creates all $NRES
resources on every side (checked: untimed applies before and after the
timed runs print "$NRES added, 0 changed, $NRES destroyed", and the
timed Terrace runs' applies report the same counts below). hyperfine
$RUNS runs after $WARMUP warm-up per command, seconds. The CLI, the
daemon and the executor's tofu share the machine; no TF_LOG; the demo runs
tofu in bubblewrap with the default 2 executor workers.

| command | median | mean | stddev | min | max |
|---|---:|---:|---:|---:|---:|
$(row "$TN"; row "$RN"; row "$SN"; row "$AN"; row "$FN"; row "$RGN"; row "$FGN"
  if [ -n "$BASELINE" ]; then row "$BN"; fi
  if [ -n "$O_ENV" ]; then row "$ON"; fi)

$OTF_NOTE.

Server CPU per API-driven apply (utime + stime of the daemon and its
reaped children, $CPU_RUNS applies one after the other, s): Terrace
$CPU_T$(if [ -n "$CPU_O" ]; then echo ", otfd $CPU_O (without its
PostgreSQL's; Terrace's SQLite is in the daemon's)"; fi).
$(if [ -n "$O_ENV" ]; then
  read -r OM OMEAN _ < <(hf "$ON")
  OOVER=$(calc "$OM - $RM")
  echo
  echo "**Beside OTF (same driver, same hyperfine run): Terrace adds $AOVER s"
  echo "over raw tofu (means: $AOVER_MEAN s), otfd adds $OOVER s (means:"
  echo "$(calc "$OMEAN - $RMEAN") s); Terrace's added time is"
  echo "$(calc "$AOVER / $OOVER * 100") % of otfd's (goal ≤ 33 %):"
  if awk "BEGIN { exit !($AOVER * 3 <= $OOVER) }"; then
    echo "met.**"
  else
    echo "missed.**"
  fi
  echo
  echo "A run's shape alone (raw tofu: init, plan -out, apply of the plan,"
  echo "no server, no sandbox) adds $(calc "$FM - $RM") s over the one-process"
  echo "raw apply, $(calc "($FM - $RM) / $OOVER * 100") % of otfd's added time;"
  echo "Terrace adds $(calc "$AM - $FM") s over that shape (driver, server,"
  echo "sandbox, cloud backend), otfd $(calc "$OM - $FM") s."
  read -r RGM _ < <(hf "$RGN")
  read -r FGM _ < <(hf "$FGN")
  echo
  echo "On equal footing (raw tofu with Go's collector set as Terrace sets"
  echo "it for runs: one-process apply $(calc "$RGM") s, the run's shape"
  echo "$(calc "$FGM") s): Terrace adds $(calc "$AM - $RGM") s over that raw"
  echo "apply, $(calc "($AM - $RGM) / $OOVER * 100") % of otfd's added time"
  echo "(otfd's runs keep Go's default collector), and $(calc "$AM - $FGM") s"
  echo "over that shape."
fi)

**Overhead through the stock CLI (Terrace remote median − raw median):
$OVER s (means: $OVER_MEAN s); target ≤ $TARGET_S s: $VERDICT.** For
context, state-only through Terrace (local execution) − raw: $SOVER s.

**Overhead of Terrace itself (the same remote apply driven through the
API with go-tfe, 5 ms polls, both logs read − raw median): $AOVER s
(means: $AOVER_MEAN s); target ≤ $TARGET_S s: $AVERDICT.** The driver
(\`bench/tfe-apply\`) makes the CLI's requests in the CLI's order, packs
and uploads the configuration, creates the run with auto-apply and the
variable, follows it to \`applied\`, reads the plan and apply logs and
checks the apply's counts; it only leaves out the CLI's fixed sleeps.
Server side, created-at → applied-at of its runs: median $ASERVER ms.
$(if [ -n "$BASELINE" ]; then
  read -r BM _ < <(hf "$BN")
  echo
  echo "**This commit against the baseline $BASE_REV** (same driver, same"
  echo "machine, same hyperfine run): $(calc "$AM") s against $(calc "$BM") s"
  if awk "BEGIN { exit !($AM <= $BM) }"; then
    echo "median: $(calc "$BM - $AM") s less per remote apply."
  else
    echo "median: $(calc "$AM - $BM") s more per remote apply."
  fi
fi)

**What dominates: the CLI's fixed sleeps, $SLEEPS s.** The stock CLI's
cloud backend (OpenTofu 1.10 \`internal/cloud\`) waits on timers whatever
the server does: after uploading the configuration it sleeps
\`planConfigurationVersionsPollInterval\` = 500 ms before reading the
configuration version back (backend_plan.go), and \`waitForRun\` sleeps
\`backoff(backoffMin=1000, backoffMax=3000, 0)\` = 1 s before its first read
of the run, once for the plan and once more for the apply
(backend_common.go, backend_apply.go). Terrace median − $SLEEPS s =
$REST s, against $(calc "$RM") s for the whole raw apply: apart from the
sleeps, the remote apply costs the CLI about what a local one does.

The server's own work on the run (created-at → applied-at, median
$SERVER ms: plan $PLAN ms, apply $APPLYT ms) overlaps those waits: the
run is created just before the first 1 s wait and, with auto-apply, the
apply job follows the plan at once, so the server's time adds to the
CLI's only when the plan outlasts the first wait (the CLI then follows
the plan log until it ends) or plan and apply together outlast both
(about 2 s after the run is created). Taken
alone, the server's work is $SERVER_OVER s over the whole raw apply,
mostly the tofu processes of a remote run (\`tofu init\`, plan,
\`show -json\`, apply, and a second init when the apply cannot use the
plan's directory; steps table below) against one for the raw apply. The daemon log at the end shows one apply's waits.

Server-side phases of the $RUNS timed remote runs (status-timestamps; ms):

$BREAKDOWN

The same for the $RUNS timed runs of the API driver:

$API_BREAKDOWN

Server-side steps of $TRACED more remote applies, from \`perf record -a -k
mono\` of sched_process_fork/exec/exit (each sandboxed tofu process from
the exec of bwrap to its exit) and the daemon log (ms):

$STEPS

Daemon log of the last of those applies, in order: the CLI's requests
(t = ms since its first request of the command, gap = ms since the line
before) and the run's events; each executor job is one line, with the
number of API requests its own tofu made:

$TIMELINE

EOF
