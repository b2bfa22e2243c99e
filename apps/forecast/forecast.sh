#!/bin/sh
# forecast: a deterministic weather outlook from edgeflow's weather aggregates (README.md).
# POSIX sh and awk (mawk and gawk alike); every number is printed with %.3f so the output bytes,
# and so the iExec result digest, are the same on every worker.
set -u
LC_ALL=C
export LC_ALL

ahead=${1:-3}
case $ahead in
  '' | *[!0-9]*)
    echo "forecast: windows ahead must be a whole number, got '$ahead'" >&2
    exit 2
    ;;
esac
if [ -z "${IEXEC_OUT:-}" ]; then
  echo "forecast: IEXEC_OUT is not set; run it as an iExec task" >&2
  exit 2
fi
name=${IEXEC_INPUT_FILE_NAME_1:-}
input=${IEXEC_IN:-.}/$name
if [ -z "$name" ] || [ ! -f "$input" ] || [ ! -r "$input" ]; then
  echo "forecast: no input CSV (IEXEC_INPUT_FILE_NAME_1='$name' under IEXEC_IN)" >&2
  exit 2
fi

awk -F, -v ahead="$ahead" -v out="$IEXEC_OUT/forecast.json" -v name="$name" '
function clean(s) {
  gsub(/^[ \t"]+/, "", s)
  gsub(/[ \t"]+$/, "", s)
  return s
}
function f3(v, s) {
  s = sprintf("%.3f", v)
  if (s == "-0.000") s = "0.000"
  return s
}
BEGIN {
  nk = split("temperature_mean humidity_mean pressure_mean", key, " ")
  n = 0
}
{ sub(/\r$/, "") }
/^[ \t]*$/ { next }
!header {
  header = 1
  for (i = 1; i <= NF; i++) col[clean($i)] = i
  endcol = ("window_end" in col) ? col["window_end"] : 0
  next
}
{
  x = n
  n++
  if (endcol) last_end = clean($endcol)
  for (k = 1; k <= nk; k++) {
    if (!(key[k] in col)) continue
    v = clean($(col[key[k]]))
    if (v !~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/) continue
    c = ++cnt[k]
    xs[k, c] = x
    ys[k, c] = v + 0
  }
}
END {
  if (n == 0) {
    print "forecast: no data rows in " name > "/dev/stderr"
    exit 2
  }
  gsub(/[^0-9A-Za-z:.+-]/, "", last_end)
  printf "{\"windows\":%d,\"ahead\":%d", n, ahead > out
  if (last_end != "") printf ",\"last_window_end\":\"%s\"", last_end > out
  outlook = "no pressure data"
  for (k = 1; k <= nk; k++) {
    m = cnt[k] + 0
    if (m == 0) continue
    mx = 0; my = 0
    for (i = 1; i <= m; i++) { mx += xs[k, i]; my += ys[k, i] }
    mx /= m; my /= m
    sxx = 0; sxy = 0
    for (i = 1; i <= m; i++) {
      sxx += (xs[k, i] - mx) * (xs[k, i] - mx)
      sxy += (xs[k, i] - mx) * (ys[k, i] - my)
    }
    slope = sxx > 0 ? sxy / sxx : 0
    value = my + slope * (n - 1 + ahead - mx)
    printf ",\"%s\":{\"last\":%s,\"trend_per_window\":%s,\"forecast\":%s}", key[k],
      f3(ys[k, m]), f3(slope), f3(value) > out
    if (key[k] == "pressure_mean") {
      t = f3(slope) + 0
      if (m < 2 || (t < 0.1 && t > -0.1)) outlook = "steady"
      else if (t > 0) outlook = "rising pressure: fair"
      else outlook = "falling pressure: unsettled"
    }
  }
  printf ",\"outlook\":\"%s\"}\n", outlook > out
  close(out)
}
' "$input" || exit 2

printf '{"deterministic-output-path":"/iexec_out/forecast.json"}\n' >"$IEXEC_OUT/computed.json"
