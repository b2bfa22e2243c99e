#!/usr/bin/env bash
# A test certificate authority and certificates for an MQTT broker over TLS, made with OpenSSL:
# for trying TLS on one machine and for the tests. Not for production (keys unencrypted,
# short-lived, in one folder).
#
#   scripts/make-test-ca.sh DIR [HOST]     # HOST: the broker's name (default: localhost)
#
# Writes into DIR:
#   ca.crt ca.key             the test CA (clients: tls.ca_file: ca.crt)
#   server.crt server.key     the broker's certificate for HOST, 127.0.0.1 and ::1 (30 days)
#   client.crt client.key     a client certificate (CN edgeflow-client), for require_certificate
#   expired.crt expired.key   a broker certificate for the same names that expired in 2020
#   wrongname.crt wrongname.key  a broker certificate made out to another host only
#   other-ca.crt other-ca.key a second CA that signed none of these: "untrusted"
set -euo pipefail
DIR="${1:?usage: make-test-ca.sh DIR [HOST]}"
HOST="${2:-localhost}"
command -v openssl >/dev/null || { echo "make-test-ca.sh: openssl not found: apt-get install openssl" >&2; exit 2; }
mkdir -p "$DIR"
cd "$DIR"
umask 077
ca() {  # NAME CN
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 30 \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() {  # NAME CN SAN DAYS-OR-DATES...
  local name=$1 cn=$2 san=$3
  shift 3
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > "$name.ext"
  if [ "$1" = "--expired" ]; then
    # openssl x509 cannot date a certificate in the past; openssl ca can (-startdate/-enddate).
    mkdir -p ca-db && : > ca-db/index.txt && echo 01 > ca-db/serial
    cat > ca-db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
CNF
    openssl ca -batch -config ca-db/ca.cnf -cert ca.crt -keyfile ca.key -in "$name.csr" \
      -out "$name.crt" -startdate 20200101000000Z -enddate 20200201000000Z \
      -extfile "$name.ext" -notext 2>/dev/null
    rm -rf ca-db
  else
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
      -days "$1" -extfile "$name.ext" 2>/dev/null
  fi
  rm -f "$name.csr" "$name.ext"
}
ca ca "edgeflow test CA"
ca other-ca "another CA"
SAN="DNS:$HOST,IP:127.0.0.1,IP:::1"
leaf server "$HOST" "$SAN" 30
leaf client edgeflow-client "DNS:edgeflow-client" 30
leaf expired "$HOST" "$SAN" --expired
leaf wrongname broker.invalid "DNS:broker.invalid" 30
rm -f ca.srl
# mosquitto may run as another user: the certificates are public, the keys stay 0600.
chmod 644 ./*.crt
echo "make-test-ca.sh: test CA and certificates for $HOST in $DIR"
