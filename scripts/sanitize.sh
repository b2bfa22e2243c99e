#!/usr/bin/env bash
# Builds with AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/ (apart from the
# normal build) and runs the tests there; the first report stops the test that made it.
# Pass ctest options to narrow it:
#   scripts/sanitize.sh -L unit
#   scripts/sanitize.sh -R 'Codec|Csv|Fuzz'
# EDGEFLOW_SANITIZE_TARGETS="codec_test fuzz_codec_test" builds only those targets (a build
# of everything takes long); EDGEFLOW_JOBS sets the parallelism (default 2).
source "$(dirname "$0")/common.sh"
ASAN_BUILD="${EDGEFLOW_ASAN_BUILD_DIR:-$ROOT/build-asan}"
jobs="${EDGEFLOW_JOBS:-2}"
sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer"
install_missing
cmake -S "$ROOT" -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEFLOW_WERROR=ON \
  -DBUILD_TESTING=ON -DCMAKE_CXX_FLAGS="$sanitize" \
  -DCMAKE_EXE_LINKER_FLAGS="$sanitize" -DCMAKE_SHARED_LINKER_FLAGS="$sanitize" \
  -DCMAKE_MODULE_LINKER_FLAGS="$sanitize" >/dev/null
if [ -n "${EDGEFLOW_SANITIZE_TARGETS:-}" ]; then
  read -r -a targets <<<"$EDGEFLOW_SANITIZE_TARGETS"
  cmake --build "$ASAN_BUILD" -j"$jobs" --target "${targets[@]}"
else
  cmake --build "$ASAN_BUILD" -j"$jobs"
fi
cd "$ASAN_BUILD"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
ctest --output-on-failure -j"$jobs" --timeout 900 "$@"
