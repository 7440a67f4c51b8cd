#!/usr/bin/env bash
# Builds the benchmark targets (RelWithDebInfo, build/release unless FERRY_BENCH_BUILD_DIR is set) and runs every
# benchmark, printing its figures. FERRY_BENCH_RUNS (default 5) repeats each SDK/end-to-end measurement.
# Usage: tests/bench/run.sh [sdk|e2e|pii|collector|agent|pg|rights|insight|httpd|attack ...]
# (no argument: sdk e2e pii collector); agent, pg, rights, insight, httpd and attack run their programs with their
# own defaults.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${FERRY_BENCH_BUILD_DIR:-$root/build/release}"
runs="${FERRY_BENCH_RUNS:-5}"
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(sdk e2e pii collector)

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON -DFERRY_BUILD_BENCH=ON
fi
targets=()
for w in "${wanted[@]}"; do
  case "$w" in
    sdk) targets+=(ferry_bench_sdk) ;;
    e2e) targets+=(ferry_bench_e2e) ;;
    pii) targets+=(ferry_bench_pii) ;;
    collector) targets+=(ferry_bench_collector) ;;
    agent) targets+=(ferry_bench_agent) ;;
    pg) targets+=(ferry_bench_pg) ;;
    rights) targets+=(ferry_bench_rights) ;;
    insight) targets+=(ferry_bench_insight) ;;
    httpd) targets+=(ferry_bench_httpd) ;;
    attack) targets+=(ferry_bench_attack) ;;
    *) echo "unknown benchmark: $w (sdk, e2e, pii, collector, agent, pg, rights, insight, httpd, attack)" >&2; exit 2 ;;
  esac
done
ninja -C "$build" -j2 ferry_bench_speed "${targets[@]}"

# The previous figures: the key=value block between "<!-- bench-previous" and "-->" in docs/PERFORMANCE.md; the SDK
# benchmark prints them beside the issue-16 targets and the new figures.
previous="$(mktemp)"
trap 'rm -f "$previous"' EXIT
(cd "$root" && sed -n '/^<!-- bench-previous/,/^-->/p' docs/PERFORMANCE.md) | grep '=' >"$previous" || true

echo "# $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD) on $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for w in "${wanted[@]}"; do
  # The machine's speed before each benchmark: on a shared virtual machine it moves between windows (the load average
  # does not show it), and the figures with it (docs/PERFORMANCE.md, "the closing round").
  echo "== $w: $("$build/tests/bench/ferry_bench_speed" | head -1)"
  case "$w" in
    sdk) "$build/tests/bench/ferry_bench_sdk" all --runs "$runs" --previous "$previous" ;;
    e2e)
      "$build/tests/bench/ferry_bench_e2e" --events 100000 --batch 500 --runs "$runs"
      echo "   previous (docs/PERFORMANCE.md): $(grep '^e2e_tls=' "$previous" | cut -d= -f2) events/s"
      ;;
    pii) "$build/tests/bench/ferry_bench_pii" ;;
    collector)
      "$build/tests/bench/ferry_bench_collector" --clients 32 --seconds 10
      # The target's half load, after a second of warm-up (the 32 clients' TLS handshakes at once, the store's log
      # growing to its working size: the collector's start, not its service); then from the start, for comparison.
      "$build/tests/bench/ferry_bench_collector" --clients 32 --seconds 10 --rate 50000 --warmup 1
      "$build/tests/bench/ferry_bench_collector" --clients 32 --seconds 10 --rate 50000
      # Senders with random UUIDv4 messageIds (not the SDK or the agent): each event's key at a page of its own.
      "$build/tests/bench/ferry_bench_collector" --clients 32 --seconds 10 --keys v4
      echo "   previous (docs/PERFORMANCE.md): $(grep '^collector_events=' "$previous" | cut -d= -f2) events/s flat out," \
        "p99 $(grep '^collector_p99_paced_ms=' "$previous" | cut -d= -f2) ms paced at 50,000/s after a warm-up"
      ;;
    agent)
      "$build/tests/bench/ferry_bench_agent" 8 40000 0 1      # one event per request (/v1/track)
      "$build/tests/bench/ferry_bench_agent" 8 100000 0 500   # 500 per request (/v1/events): the issue-16 target
      echo "   previous (docs/PERFORMANCE.md): $(grep '^agent_events=' "$previous" | cut -d= -f2) events/s"
      ;;
    pg)
      # The issue-16 target's runs: a server in service (warm connections, recycled WAL segments), flat out and at
      # half the target's load; then the default runs (plain HTTP, one and two collectors, a subject's rights).
      "$build/tests/bench/ferry_bench_pg" 10 8 --tls --collectors 1 --no-subjects --warmup 1 --wal-in-service
      "$build/tests/bench/ferry_bench_pg" 10 8 --tls --collectors 1 --no-subjects --warmup 1 --wal-in-service \
        --rate 25000
      echo "   previous (docs/PERFORMANCE.md): $(grep '^pg_events=' "$previous" | cut -d= -f2) events/s flat out," \
        "p99 $(grep '^pg_p99_paced_ms=' "$previous" | cut -d= -f2) ms paced at 25,000/s"
      "$build/tests/bench/ferry_bench_pg"
      ;;
    rights | insight | httpd | attack) "$build/tests/bench/ferry_bench_$w" ;;
  esac
done
