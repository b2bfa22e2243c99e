#!/usr/bin/env bash
# A local NATS cluster with JetStream and the MQTT interface, on free loopback ports, for
# links via nats, the tests and the benchmarks (Debian's nats-server).
#
#   scripts/nats-cluster.sh start DIR [N] [--tls CADIR] [--user NAME:PASSWORD]
#                                            N servers (default 3; 1: a single server), their
#                                            configuration, data and logs in DIR; prints
#                                            servers=nats://...,... and mqtt=tcp://...,...
#                                            and writes them to DIR/servers and DIR/mqtt.
#                                            --tls: clients must speak TLS, with CADIR's
#                                            server.crt (scripts/make-test-ca.sh CADIR);
#                                            the URLs are then tls://localhost:P.
#                                            --user: clients must log in as NAME.
#   scripts/nats-cluster.sh stop DIR        stops every server started in DIR
#   scripts/nats-cluster.sh kill DIR I      kills server I (1..N) at once (SIGKILL)
#   scripts/nats-cluster.sh restart DIR I   starts server I again, on its old ports
#
# Ports are free loopback ports picked at start (nothing answers on them) and kept in DIR, so
# a restarted server comes back where its clients look for it. Every wait is bounded: start
# fails (exit 1, the log's tail shown, the servers stopped) if a server dies or is not ready
# within 20 s.
set -euo pipefail

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2
command -v nats-server > /dev/null || {
  echo "nats-cluster.sh: nats-server is not installed: sudo apt-get install -y nats-server" >&2
  exit 1
}

# Sets PORT to a loopback port nobody listens on (nothing answers a connection to it), below
# Linux's ephemeral range (32768-60999) and not picked before in this run. Runs in this shell
# (not in $(...)), so `picked` remembers.
picked=" "
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    [[ $picked == *" $p "* ]] && continue
    if ! (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null; then
      picked+="$p "
      PORT=$p
      return 0
    fi
  done
  echo "nats-cluster.sh: no free port found in 20000-31999" >&2
  return 1
}

# Waits up to 20 s for server I to be ready; fails at once when it died.
wait_ready() {
  local i=$1
  for _ in $(seq 1 200); do
    grep -q "Server is ready" "$dir/n$i.log" 2> /dev/null && return 0
    if ! kill -0 "$(cat "$dir/n$i.pid")" 2> /dev/null; then
      echo "nats-cluster.sh: server $i stopped at start:" >&2
      tail -3 "$dir/n$i.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  echo "nats-cluster.sh: server $i not ready after 20 s; its log: $dir/n$i.log" >&2
  return 1
}

# DIR/nI.conf. Every server routes to every cluster port (its own is ignored): JetStream
# clustering wants routes configured on each.
write_conf() {
  local i=$1 n=$2
  local -a ports
  read -r -a ports < "$dir/n$i.ports" # client route mqtt
  {
    echo "server_name: n$i"
    echo "listen: 127.0.0.1:${ports[0]}"
    echo "jetstream { store_dir: \"$dir/n$i\" }"
    echo "mqtt { listen: 127.0.0.1:${ports[2]} }"
    if [[ -n $tls_dir ]]; then
      echo "tls { cert_file: \"$tls_dir/server.crt\", key_file: \"$tls_dir/server.key\", ca_file: \"$tls_dir/ca.crt\" }"
    fi
    if [[ -n $user ]]; then
      echo "authorization { users: [ { user: \"${user%%:*}\", password: \"${user#*:}\" } ] }"
    fi
    if [[ $n -gt 1 ]]; then
      echo "cluster {"
      echo "  name: edgeflow"
      echo "  listen: 127.0.0.1:${ports[1]}"
      local routes=""
      for j in $(seq 1 "$n"); do
        read -r -a other < "$dir/n$j.ports"
        routes+="${routes:+, }\"nats-route://127.0.0.1:${other[1]}\""
      done
      echo "  routes: [$routes]"
      echo "}"
    fi
  } > "$dir/n$i.conf"
}

start_one() {
  local i=$1
  nats-server -c "$dir/n$i.conf" > "$dir/n$i.log" 2>&1 &
  echo $! > "$dir/n$i.pid"
}

case $cmd in
  start)
    n=3
    tls_dir="" user=""
    shift 2
    if [[ $# -gt 0 && $1 != --* ]]; then
      n=$1
      shift
    fi
    while [[ $# -gt 0 ]]; do
      case $1 in
        --tls)
          [[ $# -ge 2 && -r $2/server.crt ]] || {
            echo "nats-cluster.sh: --tls needs a folder made by scripts/make-test-ca.sh" >&2
            exit 2
          }
          tls_dir=$(cd "$2" && pwd)
          shift 2
          ;;
        --user)
          [[ $# -ge 2 && $2 == *:* ]] || usage
          user=$2
          shift 2
          ;;
        *) usage ;;
      esac
    done
    [[ $n =~ ^[1-9]$ ]] || usage
    scheme=nats host=127.0.0.1
    if [[ -n $tls_dir ]]; then scheme=tls host=localhost; fi
    mkdir -p "$dir"
    echo "$n" > "$dir/count"
    servers="" mqtts=""
    for i in $(seq 1 "$n"); do
      ports=()
      for _ in 1 2 3; do # client, route, mqtt
        pick_port
        ports+=("$PORT")
      done
      echo "${ports[*]}" > "$dir/n$i.ports"
    done
    for i in $(seq 1 "$n"); do
      write_conf "$i" "$n"
      start_one "$i"
      read -r -a ports < "$dir/n$i.ports"
      servers+="${servers:+,}$scheme://$host:${ports[0]}"
      mqtts+="${mqtts:+,}tcp://127.0.0.1:${ports[2]}"
    done
    for i in $(seq 1 "$n"); do
      wait_ready "$i" || {
        "$0" stop "$dir"
        exit 1
      }
    done
    echo "$servers" > "$dir/servers"
    echo "$mqtts" > "$dir/mqtt"
    if [[ $n -gt 1 ]]; then
      # JetStream is usable once the servers elected a metadata leader.
      ok=""
      for _ in $(seq 1 200); do
        if grep -q -E "JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader" \
          "$dir"/n*.log 2> /dev/null; then
          ok=1
          break
        fi
        sleep 0.1
      done
      if [[ -z $ok ]]; then
        echo "nats-cluster.sh: no JetStream metadata leader after 20 s; logs in $dir" >&2
        tail -3 "$dir"/n*.log >&2 || true
        "$0" stop "$dir"
        exit 1
      fi
    fi
    echo "servers=$servers"
    echo "mqtt=$mqtts"
    ;;
  stop)
    for pidfile in "$dir"/n*.pid; do
      [[ -e $pidfile ]] || continue
      pid=$(cat "$pidfile")
      kill "$pid" 2> /dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2> /dev/null || true
      rm -f "$pidfile"
    done
    ;;
  kill)
    [[ $# -eq 3 ]] || usage
    kill -9 "$(cat "$dir/n$3.pid")" 2> /dev/null || true
    rm -f "$dir/n$3.pid" # a later stop must not signal a pid reused since
    ;;
  restart)
    [[ $# -eq 3 ]] || usage
    start_one "$3"
    wait_ready "$3"
    ;;
  *)
    usage
    ;;
esac
