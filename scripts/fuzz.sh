#!/usr/bin/env bash
# Builds the fuzz tests (fuzz/) and runs each for SECONDS (default 60) instead of its short
# default budget. A failure names the seed and round to replay and leaves the input in
# build/fuzz/fuzz-<target>-failure.bin.
#   scripts/fuzz.sh 600                    # ten minutes each
#   EDGEFLOW_FUZZ_SEED=7 scripts/fuzz.sh   # other inputs than the default seed's
# EDGEFLOW_JOBS sets the build's parallelism (default 2).
source "$(dirname "$0")/common.sh"
duration="${1:-60}"
case "$duration" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
targets=(fuzz_loader_test fuzz_codec_test fuzz_json_test fuzz_csv_test)
install_missing
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEFLOW_WERROR=ON \
  -DBUILD_TESTING=ON >/dev/null
cmake --build "$BUILD" -j"${EDGEFLOW_JOBS:-2}" --target "${targets[@]}"
cd "$BUILD/fuzz"
failed=()
for t in "${targets[@]}"; do
  echo "fuzz.sh: $t for ${duration} s"
  EDGEFLOW_SOURCE_DIR="$ROOT" EDGEFLOW_FUZZ_SECONDS="$duration" "./$t" --gtest_brief=1 ||
    failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]} (inputs in $BUILD/fuzz/fuzz-*-failure.bin)" >&2
  exit 1
fi
echo "fuzz.sh: no failures"
