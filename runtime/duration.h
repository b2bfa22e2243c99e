// Durations in pipeline files: "500ms", "1s", "5m", "1h", "1d", "250us"; a bare number is
// seconds. Kept in microseconds, the unit of event time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgeflow {

std::optional<int64_t> parse_duration_us(std::string_view text);
std::string format_duration(int64_t us);

// ISO 8601 UTC with milliseconds when they are not zero: 2010-01-01T00:00:00Z.
std::string format_iso8601(int64_t epoch_us);
// YYYY-MM-DD[THH:MM[:SS[.fraction]]][Z|±HH:MM] to µs since the epoch; no zone means UTC.
// nullopt for anything else, an impossible date included.
std::optional<int64_t> parse_iso8601_us(std::string_view text);

// Sources that replay event time at `speed` event seconds per wall second (speed > 0): the
// wall time at which an event `event_offset_us` after the first is due, for a source that
// started at `wall_start_us`. Rounded up, so a source woken at that time finds the event due;
// INT64_MAX beyond the range of int64.
int64_t replay_due_us(int64_t wall_start_us, double event_offset_us, double speed);

}  // namespace edgeflow
