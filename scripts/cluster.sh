#!/usr/bin/env bash
# A real Kubernetes control plane on this machine: etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler on loopback, built from their Go modules (no image can be pulled here, and no
# release binaries can be downloaded). There is no kubelet: a node agent registers Nodes itself.
#
#   scripts/cluster.sh build    build the four binaries into the cache (only the first time per version)
#   scripts/cluster.sh start    build when missing, make certificates, start the four, wait for /readyz
#   scripts/cluster.sh status   exit 0 when the API server answers /readyz
#   scripts/cluster.sh env      print exports, for: eval "$(scripts/cluster.sh env)"
#   scripts/cluster.sh stop     stop the four (whole process groups) and unmount etcd's tmpfs
#
# Versions come from scripts/cluster/go.mod, a wrapper module: k8s.io/kubernetes cannot be
# `go install`ed, since its go.mod points the staging modules (k8s.io/api, client-go, ...) at
# ./staging, which the module zip lacks; the wrapper requires k8s.io/kubernetes and replaces each
# staging module with its published release (v1.X.Y <-> v0.X.Y). etcd is built from
# go.etcd.io/etcd/server/v3 at the version k8s.io/kubernetes itself requires, in the same module.
# To move to another release: change the versions there, run `go mod tidy` in scripts/cluster/.
#
# Binaries are cached under $RUNNER_KUBE_CACHE/<kubernetes version>/ (default /var/cache/runner-kube):
# only the first build on a machine pays (about 6 minutes, and 2 GB of memory at its peak, on 2 cores;
# see build.log there). State (certificates, kubeconfigs, logs, pid files) lives in $RUNNER_KUBE_STATE
# (default /var/tmp/runner-kube); etcd's data is on a tmpfs mounted at $STATE/etcd, and every start
# is a fresh, empty cluster (after a kill that skipped the stop too), while the certificates are
# kept and reused.
#
# For a node agent (no kubelet here), all under $STATE/pki, signed by ca.crt:
#   admin.crt/.key          O=system:masters: register Nodes, update node status and Leases
#   kubelet.crt/.key        serving cert for 127.0.0.1/localhost: serve the kubelet API (logs, exec)
#                           on 127.0.0.1:<port>, with the Node's status.addresses InternalIP=127.0.0.1
#                           and status.daemonEndpoints.kubeletEndpoint.Port=<port>; the API server
#                           checks it against ca.crt (--kubelet-certificate-authority) and prefers the
#                           InternalIP address
#   apiserver-kubelet-client.crt  what the API server presents to that endpoint (O=system:masters):
#                           an agent that checks client certificates verifies it against ca.crt
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODULE=$HERE/cluster                         # the wrapper Go module
STATE=${RUNNER_KUBE_STATE:-/var/tmp/runner-kube}
CACHE_ROOT=${RUNNER_KUBE_CACHE:-/var/cache/runner-kube}
PKI=$STATE/pki

# Loopback only, and away from 5000 (the docker registry of scripts/engine.sh). The controller
# manager's and scheduler's own HTTPS ports (healthz, metrics) are set too, so that two clusters
# with different states and ports can run side by side.
API_PORT=${RUNNER_KUBE_API_PORT:-6443}
ETCD_PORT=${RUNNER_KUBE_ETCD_PORT:-2379}
ETCD_PEER_PORT=${RUNNER_KUBE_ETCD_PEER_PORT:-2380}
CM_PORT=${RUNNER_KUBE_CONTROLLER_MANAGER_PORT:-10257}
SCHED_PORT=${RUNNER_KUBE_SCHEDULER_PORT:-10259}
# Virtual IPs only: with no kube-proxy nothing routes them and nothing here connects to them.
SERVICE_CIDR=${RUNNER_KUBE_SERVICE_CIDR:-10.96.0.0/16}
KUBERNETES_SVC_IP=${RUNNER_KUBE_SERVICE_IP:-10.96.0.1}   # the first address of SERVICE_CIDR
API_URL=https://127.0.0.1:$API_PORT
ETCD_URL=http://127.0.0.1:$ETCD_PORT

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)

die() { echo "cluster.sh: $*" >&2; exit 1; }

# The version of a module as scripts/cluster/go.mod requires it (a tool's module shows up there
# as `// indirect`, which is what `go mod tidy` writes for tool dependencies).
mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$MODULE/go.mod"; }
KUBE_VERSION=$(mod_version k8s.io/kubernetes)
ETCD_VERSION=$(mod_version go.etcd.io/etcd/server/v3)
if [ -z "$KUBE_VERSION" ] || [ -z "$ETCD_VERSION" ]; then
  die "no k8s.io/kubernetes or etcd version in $MODULE/go.mod"
fi
BIN=$CACHE_ROOT/$KUBE_VERSION

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------

built() { for c in "${COMPONENTS[@]}"; do [ -x "$BIN/$c" ] || return 1; done; }

# -X flags as Kubernetes' own hack/lib/version.sh sets them, so that `kube-apiserver --version`
# and the server's /version name the release. The module zip has no git commit; the build date is
# the module's publication time from the proxy, so that two builds of one version agree.
kube_ldflags() {
  local major minor date
  major=${KUBE_VERSION#v}; major=${major%%.*}
  minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
  date=$(cd "$MODULE" && { "$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes 2>/dev/null || true; })
  date=${date:-1970-01-01T00:00:00Z}
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=archive -X $pkg.gitCommit= -X $pkg.buildDate=$date"
  done
  echo "$flags"
}

build() {
  built && return 0
  [ -x "$GO" ] || die "no go toolchain (set GO=/path/to/go)"
  mkdir -p "$CACHE_ROOT"
  # One build at a time per machine: a second `start` waits here and then finds the binaries.
  exec 9>"$CACHE_ROOT/.build.lock"
  flock 9
  if built; then exec 9>&-; return 0; fi
  echo "cluster.sh: building kubernetes $KUBE_VERSION and etcd $ETCD_VERSION into $BIN (first time on this machine: 5-10 minutes on 2 cores)" >&2
  local tmp; tmp=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
  trap 'rm -rf "'"$tmp"'"' EXIT   # an interrupted build leaves nothing half-made behind
  local kube_flags; kube_flags=$(kube_ldflags)
  # etcd's version is a constant in its source; only the git sha is stamped.
  local etcd_flags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
  # -trimpath: no build-machine paths in the binaries; CGO_ENABLED=0: static binaries, as the
  # Kubernetes release builds these four; -mod=readonly: go.mod and go.sum are the record.
  local c pkg flags timer
  for c in kube-apiserver kube-controller-manager kube-scheduler etcd; do
    # build.log: each binary's wall time and the peak memory of its largest compile or link.
    timer=()
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -a -o "$tmp/build.log" -f "$c: %e s wall, %M KB peak RSS")
    case $c in
      etcd) pkg=go.etcd.io/etcd/server/v3; flags=$etcd_flags ;;
      *) pkg=k8s.io/kubernetes/cmd/$c; flags=$kube_flags ;;
    esac
    echo "cluster.sh: go build $pkg" >&2
    (cd "$MODULE" && GOFLAGS="-trimpath -mod=readonly" CGO_ENABLED=0 \
      "${timer[@]}" "$GO" build -ldflags "$flags" -o "$tmp/$c" "$pkg") \
      || die "go build $pkg failed"
  done
  # Publish all four at once, so that an interrupted build never leaves a half-filled cache.
  chmod 755 "$tmp"
  rm -rf "$BIN"
  mv "$tmp" "$BIN"
  trap - EXIT
  exec 9>&-
  "$BIN/kube-apiserver" --version >&2
}

# ---------------------------------------------------------------------------------------------
# certificates and kubeconfigs
# ---------------------------------------------------------------------------------------------

# cert NAME SUBJECT EXT [CA]: a P-256 key and a certificate signed by CA (default: ca), kept
# when present so that a node agent's copies stay valid across restarts. ECDSA keys are made in
# milliseconds, RSA ones take a while on this machine.
cert() {
  local name=$1 subj=$2 ext=$3 ca=${4:-ca}
  [ -f "$PKI/$name.crt" ] && [ -f "$PKI/$name.key" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  printf '%s\n' "$ext" >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

ca() {  # ca NAME CN: a self-signed CA
  [ -f "$PKI/$1.crt" ] && [ -f "$PKI/$1.key" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null
}

pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  local server="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
  ca ca runner-kube-ca
  # The API server's serving cert: loopback for us, the in-cluster names and the service IP for
  # clients that use the `kubernetes` Service's name.
  cert apiserver "/CN=kube-apiserver" "$server
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,IP:$KUBERNETES_SVC_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # Client certs: the user is the CN, the groups the O's. system:masters bypasses RBAC; the
  # controller manager and scheduler get their own built-in RBAC roles by these names.
  cert admin "/O=system:masters/CN=kubernetes-admin" "$client"
  cert controller-manager "/CN=system:kube-controller-manager" "$client"
  cert scheduler "/CN=system:kube-scheduler" "$client"
  # What the API server presents to a kubelet endpoint (logs, exec, port-forward).
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  # The node agent's kubelet serving cert, checked by the API server against ca.crt.
  cert kubelet "/O=system:nodes/CN=system:node:runner" "$server
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:$(hostname)"
  # Front proxy (aggregation layer): its own CA, as the API server requires for the request-header
  # authenticator; controller manager and scheduler read it from the extension-apiserver-
  # authentication ConfigMap and otherwise warn at every start.
  ca front-proxy-ca front-proxy-ca
  cert front-proxy-client "/CN=front-proxy-client" "$client" front-proxy-ca
  # Service-account tokens: the API server signs with sa.key and checks with sa.pub.
  if [ ! -f "$PKI/sa.key" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
    openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  chmod 600 "$PKI"/*.key
}

kubeconfig() {  # kubeconfig NAME CERT: a kubeconfig for the client cert CERT, by file path
  cat >"$STATE/$1.kubeconfig" <<CONFIG
apiVersion: v1
kind: Config
clusters:
- name: runner
  cluster: {server: "$API_URL", certificate-authority: "$PKI/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$PKI/$2.crt", client-key: "$PKI/$2.key"}
contexts:
- name: runner
  context: {cluster: runner, user: $2}
current-context: runner
CONFIG
  chmod 600 "$STATE/$1.kubeconfig"
}

# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------

# alive NAME: its pid file names a live process that runs that binary (not a pid reused since,
# e.g. after a reboot left the state directory behind).
alive() {
  local pid
  [ -f "$STATE/$1.pid" ] && pid=$(cat "$STATE/$1.pid") && [ -n "$pid" ] || return 1
  case $(readlink "/proc/$pid/exe" 2>/dev/null) in */"$1" | */"$1 (deleted)") return 0 ;; *) return 1 ;; esac
}

# launch NAME ARGS...: in its own session (so stop kills its whole process group), logging to
# $STATE/NAME.log. setsid does not fork here (a script's background job is no group leader), so
# $! is the component's pid and its process group id.
# Returns once the child has exec'd the binary (or died): until then /proc/PID/exe still names bash
# or setsid, and `alive` would take a component that is starting on a loaded machine for dead.
launch() {
  local name=$1; shift
  alive "$name" && return 0
  setsid "$BIN/$name" "$@" >"$STATE/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$STATE/$name.pid"
  for _ in $(seq 1 200); do
    alive "$name" && return 0
    kill -0 "$pid" 2>/dev/null || return 0   # died: wait_for reports it, with its log
    sleep 0.05
  done
}

fail() {  # fail NAME: why it stopped, where its log is, and the log's tail
  echo "cluster.sh: $1 did not come up; its log is $STATE/$1.log:" >&2
  tail -n 25 "$STATE/$1.log" >&2 || true
  echo "cluster.sh: what did start is left running for a look; $0 stop stops it" >&2
  exit 1
}

wait_for() {  # wait_for NAME CHECK...: up to 90 s, failing early when the process died
  for _ in $(seq 1 180); do
    "${@:2}" && return 0
    alive "$1" || fail "$1"
    sleep 0.5
  done
  fail "$1"
}

etcd_up() { curl -fsS --max-time 2 "$ETCD_URL/health" >/dev/null 2>&1; }
api_get() {  # api_get PATH: as admin
  curl -fsS --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$API_URL$1" 2>/dev/null
}
api_ready() { [ -f "$PKI/admin.crt" ] && [ "$(api_get /readyz)" = ok ]; }
healthz() {  # healthz PORT: the controller manager's or scheduler's own /healthz (anonymous is allowed)
  [ "$(curl -ksS --max-time 2 "https://127.0.0.1:$1/healthz" 2>/dev/null)" = ok ]
}

mount_etcd_tmpfs() {
  # etcd fsyncs each write; on a tmpfs that costs nothing, and nothing outlives a stop.
  mkdir -p "$STATE/etcd"
  mountpoint -q "$STATE/etcd" || mount -t tmpfs -o size=2g,mode=0700 runner-kube-etcd "$STATE/etcd" \
    || die "cannot mount a tmpfs on $STATE/etcd (needs root)"
}

start() {
  local t0=$SECONDS
  build
  mkdir -p "$STATE"
  pki
  kubeconfig admin admin
  kubeconfig controller-manager controller-manager
  kubeconfig scheduler scheduler
  mount_etcd_tmpfs
  # A cluster killed without a stop (a reboot keeps no tmpfs, but a killed session does) leaves
  # its data on the tmpfs: a start is a fresh, empty cluster all the same.
  alive etcd || rm -rf "$STATE/etcd/data"

  # etcd: plain HTTP, on loopback only, one member.
  launch etcd --name runner --data-dir "$STATE/etcd/data" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "runner=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "" --log-level warn
  wait_for etcd etcd_up

  # kube-apiserver. Node,RBAC as a real cluster; NodeRestriction and PodSecurity named although
  # both are on by default, so that a release that changes the defaults does not change this
  # cluster. --allow-privileged so that it is PodSecurity (per namespace) that refuses a
  # privileged pod, as in a real cluster. --advertise-address 127.0.0.1 with the endpoint
  # reconciler off: the `kubernetes` Service's endpoints would have to be a loopback address,
  # which validation refuses, and with no pod network nothing would use them.
  # --kubelet-*: how it reaches a node agent's kubelet endpoint for logs/exec: with the
  # apiserver-kubelet-client cert, checking the agent's cert against our CA, at the Node's
  # InternalIP first.
  launch kube-apiserver \
    --bind-address 127.0.0.1 --secure-port "$API_PORT" --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --etcd-servers "$ETCD_URL" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction,PodSecurity \
    --allow-privileged=true \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-preferred-address-types InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key"
  wait_for kube-apiserver api_ready

  # kube-controller-manager: all default controllers (node-lifecycle among them; no cloud
  # provider, so the cloud ones stay off), each with its own service account. Single instance,
  # so no leader election: with it a restart would wait out the previous holder's lease.
  # sa.key: the token controller; ca: the root-CA publisher (kube-root-ca.crt) and CSR signing.
  launch kube-controller-manager \
    --bind-address 127.0.0.1 --secure-port "$CM_PORT" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --controllers '*' --use-service-account-credentials=true --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --flex-volume-plugin-dir "$STATE/flexvolume"   # else it creates /usr/libexec/kubernetes/...
  launch kube-scheduler \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --leader-elect=false
  wait_for kube-controller-manager healthz "$CM_PORT"
  wait_for kube-scheduler healthz "$SCHED_PORT"

  echo "cluster.sh: kubernetes $KUBE_VERSION (etcd $ETCD_VERSION) up at $API_URL in $((SECONDS - t0)) s; state and logs in $STATE; eval \"\$($0 env)\"" >&2
}

# halt NAME...: TERM their process groups (each component and anything it started) together,
# wait up to 10 s, then KILL what is left.
halt() {
  local c pid pids=()
  for c in "$@"; do
    if alive "$c"; then pids+=("$(cat "$STATE/$c.pid")"); fi
    rm -f "$STATE/$c.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local left=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && left=1; done
    [ $left = 1 ] || return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

stop() {
  # The three clients of etcd first (together: each takes a second or two to shut down), so
  # that the API server does not spend its shutdown retrying a vanished etcd.
  halt kube-scheduler kube-controller-manager kube-apiserver
  halt etcd
  if mountpoint -q "$STATE/etcd" 2>/dev/null; then umount "$STATE/etcd"; fi
  echo "cluster.sh: stopped" >&2
}

status() {
  if api_ready; then
    echo "cluster.sh: kubernetes $KUBE_VERSION ready at $API_URL"
  else
    echo "cluster.sh: no ready API server at $API_URL" >&2
    return 1
  fi
}

env_() {
  cat <<ENV
export KUBECONFIG=$STATE/admin.kubeconfig
export RUNNER_KUBE_STATE=$STATE
export RUNNER_KUBE_API=$API_URL
export RUNNER_KUBE_API_PORT=$API_PORT
export RUNNER_KUBE_CA=$PKI/ca.crt
export RUNNER_KUBE_KUBELET_CERT=$PKI/kubelet.crt
export RUNNER_KUBE_KUBELET_KEY=$PKI/kubelet.key
ENV
}

case "${1:-start}" in
  build) build ;;
  start) start ;;
  status) status ;;
  env) env_ ;;
  stop) stop ;;
  *) echo "usage: $0 build|start|status|env|stop" >&2; exit 2 ;;
esac
