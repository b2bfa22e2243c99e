#!/usr/bin/env bash
# Installs what is missing, builds, and runs a fleet on this machine: a mosquitto broker on a
# free loopback port, the cloud service and two edge services, `edgeflow deploy` of
# pipelines/fleet-weather.yaml, `edgeflow nodes`; then it pulls the broker for 5 s mid-stream
# and shows that every reading still reached the cloud exactly once.
source "$(dirname "$0")/common.sh"
install_missing
build -DBUILD_TESTING=OFF
E="$BUILD/cli/edgeflow"
fleet_workspace edgeflow-fleet
start_broker() { mosquitto -c "$WORK/mosquitto.conf" >> "$WORK/mosquitto.log" 2>&1 & BROKER_PID=$!; PIDS+=("$BROKER_PID"); sleep 0.3; }
start_broker

"$E" wallet new "$WORK/cloud.key" >/dev/null
TRUST=$("$E" wallet address "$WORK/cloud.key")
for n in cloud pi-1 pi-2; do write_node_config "$n" 'labels: { demo: "yes" }'; done
"$E" cloud --config "$WORK/cloud.yaml" 2> "$WORK/cloud.log" & PIDS+=($!)
"$E" edge --config "$WORK/pi-1.yaml" 2> "$WORK/pi-1.log" & PIDS+=($!)
"$E" edge --config "$WORK/pi-2.yaml" 2> "$WORK/pi-2.log" & PIDS+=($!)
sleep 1

echo "== edgeflow deploy pipelines/fleet-weather.yaml --broker $BROKER --key cloud.key"
"$E" deploy "$ROOT/pipelines/fleet-weather.yaml" --broker "$BROKER" --key "$WORK/cloud.key" \
  --set readings.path="$WORK/readings.jsonl" --set days.path="$WORK/daily.jsonl" --wait 30s
sleep 3
echo "== edgeflow nodes --broker $BROKER"
"$E" nodes --broker "$BROKER"

echo "== pulling the broker for 5 s (the stations keep reading into their spools)"
kill -KILL "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true
sleep 5
start_broker
echo "== broker back; waiting for the spools to empty"
EXPECTED=$(( $(wc -l < "$ROOT/pipelines/data/station-hourly.csv") - 1 ))
for _ in $(seq 1 240); do  # the replay itself lasts 72 s (720 rows at 10 a second)
  [ "$(wc -l < "$WORK/readings.jsonl" 2>/dev/null || echo 0)" -ge $((2 * EXPECTED)) ] && break
  sleep 0.5
done
"$E" nodes --broker "$BROKER"
echo "== what the cloud wrote ($WORK/readings.jsonl), per station"
for n in pi-1 pi-2; do
  got=$(grep -c "\"node\":\"$n\"" "$WORK/readings.jsonl" || true)
  unique=$(grep "\"node\":\"$n\"" "$WORK/readings.jsonl" | sed 's/.*"ts":"\([^"]*\)".*/\1/' | sort -u | wc -l)
  echo "$n: $got readings of $EXPECTED, $unique distinct"
  [ "$got" -eq "$EXPECTED" ] && [ "$unique" -eq "$EXPECTED" ] || { echo "MISMATCH" >&2; exit 1; }
done
echo "nothing lost, nothing twice; daily figures in $WORK/daily.jsonl: $(wc -l < "$WORK/daily.jsonl") lines"
