#!/bin/bash
# User-space instructions per operation, both peers together, repeatable
# whatever else loads the machine:
#
#   cargo build --release -p tether-bench
#   tether-bench/scripts/instr-count.sh null [N]
#
# KIND: null callback null64 make make64 echo64k read64k read64k_ahead4 remotefile64k
# chain4 chain4_stepwise.
# Runs `tether-bench --only count:KIND:N` (N operations over an in-memory
# pair on one thread) under callgrind for N/10 and N operations and
# prints (Ir(N) - Ir(N/10)) / (0.9 N): start-up cancels out.
set -euo pipefail
kind=$1
n=${2:-20000}
bin=${TETHER_BENCH:-$(dirname "$0")/../../target/release/tether-bench}
ir() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --only "count:$kind:$1" 2>&1 >/dev/null |
    awk '/Collected :/ { print $4 }'
}
small=$((n / 10))
a=$(ir "$small")
b=$(ir "$n")
awk -v a="$a" -v b="$b" -v n="$n" -v s="$small" -v k="$kind" \
  'BEGIN { printf "%-16s Ir/op=%.0f\n", k, (b - a) / (n - s) }'
