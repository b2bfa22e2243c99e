#!/usr/bin/env bash
# Cross build for ARCH (arm64 or armhf) with Debian's cross toolchain, and the tests run under
# qemu-user. From a fresh Debian 12 machine:
#   scripts/cross.sh arm64                 # unit and integration tests but SandboxEscape.*
#   scripts/cross.sh armhf -L unit         # ctest options replace the default selection
# Docs: docs/cross.md.
# 1. installs what is missing on the host: g++-TRIPLE, qemu-user-static, cmake, pkg-config,
#    mosquitto and mosquitto-clients (the integration tests start the host's broker);
# 2. builds a sysroot of Debian's ARCH packages: a private apt (its own lists, state and cache,
#    APT::Architecture=ARCH; the host's dpkg is not touched, no `dpkg --add-architecture`)
#    resolves the -dev packages and their dependencies and downloads them, and `dpkg-deb -x`
#    unpacks each one except the compiler's own (libc6-dev, libstdc++-dev: the cross toolchain
#    has them);
# 3. configures with cmake/toolchain-aarch64.cmake (or -armhf) and builds with -jEDGEFLOW_JOBS;
# 4. runs ctest, every test through qemu-ARCH-static -L SYSROOT (CMAKE_CROSSCOMPILING_EMULATOR),
#    with EDGEFLOW_BINARY a wrapper that runs the built edgeflow under qemu too.
# The vision family (OpenCV) is left out: -DEDGEFLOW_VISION=OFF (see docs/cross.md).
# Environment: EDGEFLOW_CROSS_BUILD_DIR (build-ARCH), EDGEFLOW_CROSS_SYSROOT (build-ARCH-sysroot),
# EDGEFLOW_JOBS (2), EDGEFLOW_CROSS_TARGETS (build only these targets), EDGEFLOW_CROSS_TIMEOUT
# (ctest --timeout of each test, 300 s; the slowest takes about 20 s under qemu).
source "$(dirname "$0")/common.sh"

ARCH="${1:-}"
case "$ARCH" in
  arm64) TRIPLE=aarch64-linux-gnu QEMU=qemu-aarch64-static TOOLCHAIN=aarch64 ;;
  armhf) TRIPLE=arm-linux-gnueabihf QEMU=qemu-arm-static TOOLCHAIN=armhf ;;
  *) echo "usage: scripts/cross.sh arm64|armhf [ctest options]" >&2; exit 2 ;;
esac
shift
# By default, less the sandbox tests qemu-user cannot pass: their probe is an ARCH program
# the sandbox cannot exec without binfmt_misc, and qemu-user refuses CLONE_NEWPID, seccomp
# and Landlock (docs/cross.md). They need a real device or qemu-system.
[ $# -eq 0 ] && set -- -L 'unit|integration' -E '^SandboxEscape\.'

CROSS_BUILD="${EDGEFLOW_CROSS_BUILD_DIR:-$ROOT/build-$ARCH}"
SYSROOT="${EDGEFLOW_CROSS_SYSROOT:-$ROOT/build-$ARCH-sysroot}"
JOBS="${EDGEFLOW_JOBS:-2}"
TIMEOUT="${EDGEFLOW_CROSS_TIMEOUT:-300}"
START=$SECONDS

# 1. The host's tools.
# shellcheck disable=SC2034  # read by install_missing
PACKAGES=(cmake make pkg-config g++-"$TRIPLE" qemu-user-static mosquitto mosquitto-clients
  nats-server)
install_missing

# 2. The sysroot: what CMakeLists.txt finds (less OpenCV), as ARCH packages.
TARGET_PACKAGES=(
  libyaml-cpp-dev libmsgpack-cxx-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libmuparser-dev libgtest-dev libgmock-dev
  libmosquitto-dev libpaho-mqtt-dev libpaho-mqttpp-dev libzmq3-dev cppzmq-dev
  nettle-dev libsecp256k1-dev libsqlite3-dev libsystemd-dev libseccomp-dev libnats-dev
  libcivetweb-dev libcpp-httplib-dev
  libssl-dev                   # PahoMqttCpp's CMake config finds OpenSSL
  libc6 libstdc++6 libgcc-s1   # for qemu -L: the loader and the run-time libraries
)
# The compiler's own (headers that would shadow the cross toolchain's) and tools never run.
SKIP='^(libc6-dev|libc-dev-bin|linux-libc-dev|libcrypt-dev|libnsl-dev|libtirpc-dev|rpcsvc-proto|libstdc\+\+-[0-9]+-dev|libgcc-[0-9]+-dev|lib(a|t|l|ub|hwa)san[0-9]+|pkgconf|pkgconf-bin|pkg-config|icu-devtools)$'

make_sysroot() {
  local stamp="$SYSROOT/.edgeflow-sysroot"
  local want="${TARGET_PACKAGES[*]}"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "edgeflow: building the $ARCH sysroot in $SYSROOT" >&2
  local apt="$SYSROOT.apt"
  mkdir -p "$apt"/sources.list.d "$apt"/state/lists/partial "$apt"/cache/archives/partial
  : >"$apt/state/status"  # nothing installed: apt resolves every dependency
  # Debian's own sources of the host; the host's keys and apt.conf (a proxy) still apply.
  rm -f "$apt"/sources.list.d/*
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    if [ -f "$f" ] && grep -q 'debian\.org' "$f"; then
      cp "$f" "$apt/sources.list.d/$(basename "$f")"
    fi
  done
  local opts=(-o APT::Architecture="$ARCH" -o APT::Architectures="$ARCH"
              -o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts="$apt/sources.list.d"
              -o Dir::State="$apt/state"
              -o Dir::State::status="$apt/state/status" -o Dir::Cache="$apt/cache"
              -o Debug::NoLocking=1 -o APT::Install-Recommends=0 -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -q >/dev/null
  apt-get "${opts[@]}" install --download-only -y -q "${TARGET_PACKAGES[@]}" >/dev/null
  rm -rf "$SYSROOT"
  mkdir -p "$SYSROOT"
  local deb name n=0
  for deb in "$apt"/cache/archives/*.deb; do
    name="$(dpkg-deb -f "$deb" Package)"
    [[ "$name" =~ $SKIP ]] && continue
    dpkg-deb -x "$deb" "$SYSROOT"
    n=$((n + 1))
  done
  echo "$want" >"$stamp"
  echo "edgeflow: $n $ARCH packages unpacked in $SYSROOT" >&2
}
make_sysroot
echo "edgeflow: $ARCH sysroot ready at $((SECONDS - START)) s" >&2

# 3. Configure and build.
cmake -S "$ROOT" -B "$CROSS_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEFLOW_WERROR=ON \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchain-$TOOLCHAIN.cmake" -DEDGEFLOW_SYSROOT="$SYSROOT" \
  -DEDGEFLOW_VISION=OFF -DBUILD_TESTING=ON >/dev/null
if [ -n "${EDGEFLOW_CROSS_TARGETS:-}" ]; then
  read -r -a targets <<<"$EDGEFLOW_CROSS_TARGETS"
  cmake --build "$CROSS_BUILD" -j"$JOBS" --target "${targets[@]}"
else
  cmake --build "$CROSS_BUILD" -j"$JOBS"
fi
echo "edgeflow: $ARCH build done at $((SECONDS - START)) s" >&2

# 4. The tests, under qemu. Tests that start the edgeflow binary start this wrapper instead
# (there is no binfmt_misc in a container: an ARCH binary cannot be exec'd directly).
wrapper="$CROSS_BUILD/edgeflow-qemu"
printf '#!/bin/sh\nexec %s -L %s %s "$@"\n' "$QEMU" "$SYSROOT" "$CROSS_BUILD/cli/edgeflow" >"$wrapper"
chmod +x "$wrapper"
cd "$CROSS_BUILD" || exit
# qemu-user is not reliable when several threads of a program fork at once (the sandbox's
# parallel runs, once in three suites: the child dies before the app starts): a test that
# fails is run once more, and the retry shows in the output.
status=0
EDGEFLOW_BINARY="$wrapper" QEMU_LD_PREFIX="$SYSROOT" \
  ctest --output-on-failure -j"$JOBS" --timeout "$TIMEOUT" --repeat until-pass:2 "$@" || status=$?
echo "edgeflow: $ARCH total $((SECONDS - START)) s" >&2
exit $status
