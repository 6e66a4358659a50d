#!/usr/bin/env bash
# make certs: a local certificate authority and a server certificate signed by
# it, for TLS=on (nginx). Writes DIR (default certs/): ca.crt, ca.key,
# server.crt, server.key. The certificate names localhost, 127.0.0.1 and ::1
# plus any NAMES given ("app.example.com,10.0.0.5"). Trust ca.crt in your
# browser or pass it to clients (python: verify=certs/ca.crt; Node:
# NODE_EXTRA_CA_CERTS=certs/ca.crt). Existing files are kept unless
# FORCE=1.
set -o errexit -o pipefail -o nounset

dir="${1:-certs}"
names="${2:-}"
days="${CERT_DAYS:-825}"
mkdir -p "$dir"
chmod 700 "$dir"
if [ -f "$dir/server.crt" ] && [ "${FORCE:-0}" != 1 ]; then
    echo "certs: $dir/server.crt exists (FORCE=1 makes new ones)"
    exit 0
fi
umask 077
san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in ${names//,/ }; do
    if [[ "$name" =~ ^[0-9.:]+$ ]]; then san="$san,IP:$name"; else san="$san,DNS:$name"; fi
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$days" \
    -subj "/CN=socketio-kit local CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/server.key" -out "$dir/server.csr" \
    -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" \
    >"$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/server.crt" -days "$days" \
    -extfile "$dir/server.ext" 2>/dev/null
rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl"
chmod 644 "$dir/ca.crt" "$dir/server.crt"
echo "certs: $dir/server.crt for $san, signed by $dir/ca.crt (valid $days days)"
