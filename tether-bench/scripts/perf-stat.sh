#!/bin/bash
# Kernel events per operation for one kind of operation, client and server
# processes together:
#
#   cargo build --release -p tether-bench
#   tether-bench/scripts/perf-stat.sh null-seq [taskset -c 0]
#   FLAVOUR=ct tether-bench/scripts/perf-stat.sh null-seq taskset -c 0
#
# KIND: floor-seq null-seq callback-seq tarpc-seq (sequential, best pinned),
#       floor256 tether256 tarpc256 netrefs256 (256 in flight, unpinned),
#       read64k, remotefile64k and stream64k (the raw stream; these three
#       count 64 KiB chunks), echo1MiB.
# FLAVOUR=ct runs server and client on tokio's current-thread runtime
# (default: multi-thread).
# Runs `tether-bench --only profile:KIND` (5 s of that operation) under
# `perf stat` with software events and syscall tracepoints (no hardware
# counters needed) and divides each count by the operations done.
set -euo pipefail
kind=$1; shift
bin=${TETHER_BENCH:-$(dirname "$0")/../../target/release/tether-bench}
ev="task-clock,raw_syscalls:sys_enter,sched:sched_switch,sched:sched_wakeup"
for s in write writev sendto read recvfrom epoll_wait futex; do ev="$ev,syscalls:sys_enter_$s"; done
err=$(mktemp)
out=$(perf stat -x, -e "$ev" "$@" "$bin" --only "profile:$kind" --flavour "${FLAVOUR:-mt}" 2>"$err")
ops=$(echo "$out" | awk -F'\t' '/ops/{print $2}')
printf "%-14s ops=%-9s" "$kind" "$ops"
awk -F, -v ops="$ops" '
  $3 == "task-clock" { printf " cpu_us=%.2f", $1 * 1000 / ops; next }
  { n = $3; sub(/.*:sys_enter_/, "", n); sub(/raw_syscalls:sys_enter/, "syscalls", n);
    sub(/sched:sched_/, "", n); printf " %s=%.2f", n, $1 / ops }' "$err"
echo
rm -f "$err"
