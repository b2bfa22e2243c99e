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
