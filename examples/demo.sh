#!/usr/bin/env bash
# Ferry demo: from a fresh clone to the quickstart running, in one command (as root on Debian 12).
#   examples/demo.sh [args for ferry_quickstart...]
# Steps (each a function below; add one by writing step_<name> and listing it in main):
#   deps       scripts/install-deps.sh (fast when everything is installed)
#   configure  the "release" CMake preset (build/release)
#   build      only what the demo needs: ferry_quickstart, ferry-collector and ferryctl
#   collector  a fresh collector on 127.0.0.1 with TLS (a certificate made here), a write key and an admin token
#   quickstart the C quickstart (examples/c/quickstart.c) tracks with consent and masking and uploads
#   arrived    what the collector stored (masked; nothing of the pending or denied purposes)
#   rights     a compliance officer shows, exports and erases the subject with ferryctl, then verifies the audit log
#   insight    synthetic users (ferry-insight-gen) posted to the collector; an analyst asks ferryctl insight for a
#              weekly retention table and for a person's tags with the reason each applies
#   console    the officer's console (docs/CONSOLE.md): its URL and a token to sign in with; on a terminal the
#              collector keeps running until Enter is pressed
# Background processes started with start_bg (a collector, say) are stopped when the script exits, however it exits.
# Environment: FERRY_DEMO_DATA (default <repo>/demo-data), FERRY_JOBS (default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build/release"
DATA=${FERRY_DEMO_DATA:-$ROOT/demo-data}
JOBS=${FERRY_JOBS:-2}
cd "$ROOT"

# ---- plumbing -----------------------------------------------------------------------------------------------------

BG_PIDS=()

# start_bg NAME LOGFILE CMD...: runs CMD in the background (output to LOGFILE), stopped at exit.
start_bg() {
  local name=$1 logfile=$2
  shift 2
  "$@" >"$logfile" 2>&1 &
  BG_PIDS+=("$!")
  echo "started $name (pid $!, log $logfile)"
}

cleanup() {
  local rc=$?
  local pid
  for pid in "${BG_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      # Give it 5 s to finish cleanly, then force.
      for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() {
  local name=$1
  shift
  printf '\n== %s ==\n' "$name"
  "step_$name" "$@"
}

# has_target NAME: true when the configured build defines that target.
has_target() {
  ninja -C "$BUILD" -t query "$1" >/dev/null 2>&1
}

# ---- steps --------------------------------------------------------------------------------------------------------

step_deps() {
  scripts/install-deps.sh
}

step_configure() {
  cmake --preset release >/dev/null
  echo "configured $BUILD"
}

step_build() {
  if ! has_target ferry_quickstart; then
    echo "this tree has no ferry_quickstart target (examples/CMakeLists.txt)" >&2
    return 1
  fi
  local targets=(ferry_quickstart ferry-collector ferryctl ferry-insight-gen)
  echo "building: ${targets[*]}"
  cmake --build "$BUILD" --parallel "$JOBS" --target "${targets[@]}"
}

step_collector() {
  rm -rf "$DATA"
  mkdir -p "$DATA/collector"
  chmod 700 "$DATA" "$DATA/collector"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$DATA/tls.key" -out "$DATA/tls.crt" 2>/dev/null
  WRITE_KEY=$("$BUILD/collector/ferryctl" --data-dir "$DATA/collector" keys create-write-key --project demo)
  ADMIN_TOKEN=$("$BUILD/collector/ferryctl" --data-dir "$DATA/collector" keys create-admin-token \
    --roles compliance,operator)
  ANALYST_TOKEN=$("$BUILD/collector/ferryctl" --data-dir "$DATA/collector" keys create-admin-token \
    --roles analyst --name analyst)
  echo "write key:   ${WRITE_KEY:0:12}... (printed once by ferryctl; stored only hashed)"
  echo "admin token: ${ADMIN_TOKEN:0:12}... (roles compliance,operator); analyst token ${ANALYST_TOKEN:0:12}..."
  # The operations insight (docs/INSIGHT.md), embedded, with the tags and rules meant for the generated users.
  "$BUILD/tools/insight_gen/ferry-insight-gen" --config | /usr/bin/python3 -c '
import json, sys
config = json.load(sys.stdin)
config["tags"] = [
    {"name": "digital_browser_no_order", "description": "browses digital often, no order lately, responds to promotions",
     "rule": {"all": [
         {"count": {"event": "product_viewed", "where": [{"prop": "category", "op": "eq", "value": "digital"}],
                    "within_days": 30}, "op": "gte", "value": 3},
         {"not": {"count": {"event": "order_completed", "within_days": 30}, "op": "gte", "value": 1}},
         {"count": {"event": "promotion_clicked", "within_days": 90}, "op": "gte", "value": 1}]}},
    {"name": "lapsing_buyer", "description": "bought before, not seen for two weeks",
     "rule": {"all": [{"count": {"event": "order_completed"}, "op": "gte", "value": 1},
                      {"recency": {}, "op": "gte", "value": 14}]}}]
json.dump(config, sys.stdout, indent=1)' >"$DATA/insight-config.json"
  start_bg ferry-collector "$DATA/collector.log" "$BUILD/collector/ferry-collector" --listen 127.0.0.1:0 \
    --data-dir "$DATA/collector" --tls-cert "$DATA/tls.crt" --tls-key "$DATA/tls.key" \
    --insight embedded --insight-config "$DATA/insight-config.json"
  local port_file="$DATA/collector/collector.port"
  for _ in $(seq 100); do
    [[ -s "$port_file" ]] && break
    sleep 0.1
  done
  if [[ ! -s "$port_file" ]]; then
    echo "the collector did not start; its log:" >&2
    cat "$DATA/collector.log" >&2
    return 1
  fi
  URL="https://127.0.0.1:$(cat "$port_file")"
  echo "collector listening on $URL (log: $DATA/collector.log)"
}

step_quickstart() {
  FERRY_STORAGE_PATH="$DATA/app-buffer.db" "$BUILD/examples/ferry_quickstart" "$URL" "$WRITE_KEY" "$DATA/tls.crt"
}

ctl() {
  "$BUILD/collector/ferryctl" --url "$URL" --token "$ADMIN_TOKEN" --ca-file "$DATA/tls.crt" "$@"
}

step_arrived() {
  echo "events stored by the collector (ferryctl debug dump-events):"
  "$BUILD/collector/ferryctl" --data-dir "$DATA/collector" debug dump-events --json |
    /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    row = json.loads(line)
    body = row["body"] if isinstance(row["body"], dict) else json.loads(row["body"])
    props = body.get("properties") or {}
    what = body.get("event") or body.get("name") or ""
    payload = props or body.get("traits") or {}
    if body["type"] == "consent":  # the record: which purpose it sets, to what, and how
        what = "%s=%s" % (props.get("purpose"), props.get("state"))
        payload = {k: props.get(k) for k in ("method", "receiptId") if props.get(k) is not None}
    print("  %-9s %-22s purpose=%-10s user=%-10s %s" % (body["type"], what, body["purpose"],
          body.get("userId", "-"), json.dumps(payload, ensure_ascii=False)[:70]))'
}

step_rights() {
  local subject=user-1001
  echo "\$ ferryctl subject show $subject"
  ctl subject show "$subject"
  echo
  echo "\$ ferryctl subject export $subject > $DATA/export-$subject.json"
  ctl subject export "$subject" >"$DATA/export-$subject.json"
  /usr/bin/python3 -c '
import json, os, sys
doc = json.load(open(sys.argv[1]))
for p in doc["projects"]:
    print("  export (%s, %d bytes): project %s: %d identities, %d events %s, traits %s, %d consent records" % (
        doc["format"], os.path.getsize(sys.argv[1]), p["project"], len(p["identities"]), len(p["events"]),
        json.dumps(p["eventsByType"]), json.dumps(p["traits"]), len(p["consentHistory"])))' "$DATA/export-$subject.json"
  echo
  echo "\$ ferryctl subject erase $subject --yes"
  ctl subject erase "$subject" --yes
  echo
  echo "\$ ferryctl subject show $subject    (after the erase)"
  ctl subject show "$subject" || true
  echo
  echo "\$ ferryctl requests"
  ctl requests
  echo
  echo "\$ ferryctl audit verify"
  ctl audit verify
}

step_insight() {
  local start
  start=$(date -u -d '63 days ago' +%F)
  echo "\$ ferry-insight-gen --users 400 --days 63 --start $start --project demo   (posted to /v1/batch)"
  "$BUILD/tools/insight_gen/ferry-insight-gen" --users 400 --days 63 --start "$start" --project demo \
    >"$DATA/insight-events.ndjson"
  /usr/bin/python3 - "$URL/v1/batch" "$WRITE_KEY" "$DATA/tls.crt" "$DATA/insight-events.ndjson" <<'PY'
import json, ssl, sys, urllib.request
url, key, ca, path = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
events = [json.loads(line) for line in open(path)]
accepted = 0
for i in range(0, len(events), 500):
    body = json.dumps({"batch": events[i:i + 500]}).encode()
    req = urllib.request.Request(url, body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    accepted += json.load(urllib.request.urlopen(req, context=ctx))["accepted"]
print("  %d events posted, %d accepted" % (len(events), accepted))
PY
  local actl=("$BUILD/collector/ferryctl" --url "$URL" --token "$ANALYST_TOKEN" --ca-file "$DATA/tls.crt")
  echo
  # As of yesterday: the generated activity ends there.
  local asof
  asof=$(date -u -d yesterday +%F)
  echo "\$ ferryctl insight retention --project demo --periods 8 --as-of $asof    (analyst token)"
  "${actl[@]}" insight retention --project demo --periods 8 --as-of "$asof"
  echo
  local person
  person=$("${actl[@]}" insight tags --project demo --as-of "$asof" --json |
    /usr/bin/python3 -c '
import json, sys
doc = json.load(sys.stdin)
tagged = [p for p in doc["persons"] if any(t["tag"] == "digital_browser_no_order" for t in p["tags"])]
tagged = tagged or [p for p in doc["persons"] if p["tags"]]
print(tagged[0]["person"] if tagged else "")')
  if [[ -z "$person" ]]; then
    echo "no person holds a tag today (the generated stream is random)"
    return 0
  fi
  echo "\$ ferryctl insight profile $person --project demo --as-of $asof"
  "${actl[@]}" insight profile "$person" --project demo --as-of "$asof"
}

step_console() {
  local status
  status=$(curl --silent --cacert "$DATA/tls.crt" -o /dev/null -w '%{http_code}' "$URL/console/")
  if [[ "$status" != 200 ]]; then
    echo "the collector did not serve /console/ (HTTP $status)" >&2
    return 1
  fi
  echo "Open the officer's console (the certificate is the demo's own, self-signed: accept it in the browser):"
  echo "  $URL/console/"
  echo "and sign in with this admin token (roles compliance,operator; the analyst's: $ANALYST_TOKEN):"
  echo "  $ADMIN_TOKEN"
  if [[ -t 0 && -t 1 ]]; then
    read -r -p "Press Enter to stop the collector. " _
  else
    echo "(not a terminal: the collector stops now; run the demo in a terminal to keep it up while you look)"
  fi
}

main() {
  step deps
  step configure
  step build
  step collector
  step quickstart
  step arrived
  step rights
  step insight
  printf '\ndemo finished: data under %s (removed at the next run)\n' "$DATA"
  step console
}

main "$@"
