# Shared by demo.sh and test.sh: install what is missing (Debian 12), then configure and build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${EDGEFLOW_BUILD_DIR:-$ROOT/build}"

PACKAGES=(
  g++ cmake make pkg-config
  libyaml-cpp-dev libmsgpack-cxx-dev libspdlog-dev libcli11-dev nlohmann-json3-dev libmuparser-dev
  libgtest-dev libgmock-dev
  mosquitto mosquitto-clients libmosquitto-dev libpaho-mqtt-dev libpaho-mqttpp-dev
  libzmq3-dev cppzmq-dev libbenchmark-dev
  libopencv-dev
  nettle-dev libsecp256k1-dev
  libsqlite3-dev libsystemd-dev
  libssl-dev openssl
  libseccomp-dev
  libnats-dev nats-server libcivetweb-dev
  libcpp-httplib-dev  # the metrics test's HTTP client
)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "edgeflow: installing ${missing[*]}" >&2
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEFLOW_WERROR=ON "$@" >/dev/null
  cmake --build "$BUILD" -j2
}

# For the fleet demos: a TCP port on 127.0.0.1 free a moment ago.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# For the fleet demos: a work folder WORK (prefix $1), a mosquitto configuration on a free
# loopback port (PORT, BROKER), and PIDS, whose processes are stopped when the script exits.
fleet_workspace() {
  WORK="$(mktemp -d "/tmp/$1.XXXXXX")"
  PORT=$(free_port)
  BROKER="tcp://127.0.0.1:$PORT"
  PIDS=()
  trap stop_fleet EXIT
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" > "$WORK/mosquitto.conf"
}
stop_fleet() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "(logs and data are in $WORK)"
}

# For the fleet demos: the service config of node $1 on $BROKER, trusting $TRUST, with data in
# $WORK/data/$1; more YAML lines may follow as $2.
write_node_config() {
  printf 'node: %s\nbroker: %s\ndata_dir: %s\ntrust: "%s"\nstatus_period: 2s\nkeepalive: 5s\n%s' \
    "$1" "$BROKER" "$WORK/data/$1" "$TRUST" "${2:+$2
}" > "$WORK/$1.yaml"
}
