#!/usr/bin/env bash
# Installs what is missing, builds, and runs a small fleet with its dashboard for SECONDS
# (default 300; Ctrl-C stops it): a mosquitto broker on a free loopback port; the cloud
# service with --http (the dashboard), which runs the iExec scheduler of
# pipelines/iexec-worker-pool.yaml for three weather stations pi-1..3 that lend their CPU to
# the pool; and the surveillance camera cam-1 (a solar Raspberry Pi 4 with a synthetic
# camera) whose motion detection runs on a second cloud service, "archive". Open the URL it
# prints.
#   scripts/dashboard-demo.sh [SECONDS] [--screenshot FILE]   (FILE: a PNG of the page, taken
#                                                              with headless Chromium)
source "$(dirname "$0")/common.sh"
SECONDS_TO_RUN=300
SHOT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --screenshot) SHOT="$(realpath -m "$2")"; shift 2 ;;
    *) SECONDS_TO_RUN="${1%s}"; shift ;;
  esac
done
[ -n "$SHOT" ] && PACKAGES+=(chromium)
install_missing
build -DBUILD_TESTING=OFF
E="$BUILD/cli/edgeflow"
fleet_workspace edgeflow-dashboard
HTTP=$(free_port)
mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 & PIDS+=($!)
sleep 0.3

"$E" wallet new "$WORK/cloud.key" >/dev/null
TRUST=$("$E" wallet address "$WORK/cloud.key")
for n in cloud archive cam-1 pi-1 pi-2 pi-3; do write_node_config "$n" "battery: { poll: 5s }"; done
"$E" cloud --config "$WORK/cloud.yaml" --http "127.0.0.1:$HTTP" > "$WORK/results.log" 2> "$WORK/cloud.log" & PIDS+=($!)
"$E" cloud --config "$WORK/archive.yaml" 2> "$WORK/archive.log" & PIDS+=($!)
for n in cam-1 pi-1 pi-2 pi-3; do "$E" edge --config "$WORK/$n.yaml" 2> "$WORK/$n.log" & PIDS+=($!); done
sleep 1

chmod 755 "$WORK"  # the sandboxed iExec apps read their task folders below it
"$E" deploy "$ROOT/pipelines/iexec-worker-pool.yaml" --broker "$BROKER" --key "$WORK/cloud.key" \
  --set scheduler.wallet="$WORK/scheduler.key" --set scheduler.journal="$WORK/poco.journal" \
  --set worker.wallet="$WORK/{node}.key" --set worker.work_dir="$WORK/work/{node}" \
  --set local-forecast.work_dir="$WORK/local/{node}" --wait 60s
# The camera's cloud part runs on "archive": the cloud service with the dashboard runs the
# pool's scheduler.
sed 's/^  cloud: { tier: cloud }/  archive: { tier: cloud }/' \
  "$ROOT/pipelines/surveillance-camera-cloud.yaml" > "$WORK/surveillance-camera.yaml"
"$E" deploy "$WORK/surveillance-camera.yaml" --broker "$BROKER" --key "$WORK/cloud.key" \
  --set cam.count=0 --wait 60s
echo
echo "== the dashboard: http://127.0.0.1:$HTTP/   (JSON: /api/state; Prometheus: /metrics)"
echo "   running for $SECONDS_TO_RUN s; Ctrl-C stops it"
if [ -n "$SHOT" ]; then
  sleep 30  # a few motion events and tasks, rates over several statuses
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$WORK/chromium" \
    --window-size=1400,1850 --virtual-time-budget=5000 --screenshot="$SHOT" \
    "http://127.0.0.1:$HTTP/?once" 2> "$WORK/chromium.log"
  echo "== screenshot: $SHOT"
  exit 0
fi
sleep "$SECONDS_TO_RUN"
