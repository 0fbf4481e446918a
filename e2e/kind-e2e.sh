#!/usr/bin/env bash
# End-to-end on kind (called by e2e/run.sh once kind, docker, kubectl and openssl are known to be there).
#
# 1. A kind cluster, the muster-exchange image (trusting the e2e's CA) loaded into it, and two real Dex
#    servers (e2e/fixtures/dex.yaml): a central one that logs user jane in, and a remote one that exchanges
#    central tokens through an OIDC connector.
# 2. The install steps of docs/install.md, verbatim (the blocks between "# install-step: NAME" and
#    "# end-install-step" below; cli/tests/install_steps.rs keeps them equal to the doc), for both
#    topologies, with the copies of the examples in e2e/fixtures/ (the remote Dex above, an echo app).
# 3. A second kind cluster plays the remote management cluster: its API server trusts the remote Dex
#    (structured authentication configuration), and topology F's endpoint ConfigMap names it.
# 4. Checks that each fail the script: refusals, injection, the exchanged token the app received in each
#    topology, a SelfSubjectReview at the remote API server with what the sidecar forwarded, conditions
#    for a healthy and a broken MCPServer, grants.
#
# Logs, descriptions and events of everything go to $ARTIFACTS (default e2e/artifacts/<run>) before the
# cluster is deleted. KEEP_CLUSTER=1 keeps the cluster; a rerun reuses it (everything is applied
# idempotently and every Deployment is restarted onto the freshly built image and CA).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-muster-exchange-e2e}
REMOTE_CLUSTER=${REMOTE_CLUSTER:-$CLUSTER-remote}
KIND_NETWORK=${KIND_EXPERIMENTAL_DOCKER_NETWORK:-kind}
NODE_IMAGE=${NODE_IMAGE:-kindest/node:v1.33.1}   # k8s-openapi v1_33: the oldest API level we build against
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
# The tag the manifests and the webhook's --sidecar-image name, so the install steps need no edit.
IMAGE=ghcr.io/giantswarm/muster-exchange:$VERSION
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)-$$
ARTIFACTS=${ARTIFACTS:-e2e/artifacts/$RUN_ID}
WAIT=${WAIT:-300s}
CENTRAL_ISSUER=https://central-dex.mx-e2e-dex.svc
REMOTE_ISSUER=https://remote-dex.mx-e2e-dex.svc
WORK=$(mktemp -d)
mkdir -p "$ARTIFACTS"
CLUSTER_READY=
REMOTE_READY=
REUSED=

fail() { echo "e2e: FAIL: $*" >&2; exit 1; }
pass() { echo "e2e: ok: $*"; }
step() { echo "e2e: --- $*"; }

# Everything the cluster knows, for the post-mortem: never Secret values, never a token.
collect() {
  [ -n "$CLUSTER_READY" ] || return 0
  echo "e2e: collecting logs, descriptions and events into $ARTIFACTS"
  kubectl get nodes -o wide >"$ARTIFACTS/nodes.txt" 2>&1 || true
  kubectl get events -A --sort-by=.lastTimestamp >"$ARTIFACTS/events.txt" 2>&1 || true
  kubectl get mcps -A -o yaml >"$ARTIFACTS/mcpservers.yaml" 2>&1 || true
  kubectl get mutatingwebhookconfigurations,validatingwebhookconfigurations -o yaml >"$ARTIFACTS/webhookconfigurations.yaml" 2>&1 || true
  local ns pod container
  for ns in muster-exchange muster mx-e2e-dex org-acme; do
    kubectl -n "$ns" get all,configmaps,secrets,roles,rolebindings,networkpolicies -o wide >"$ARTIFACTS/$ns.objects.txt" 2>&1 || true
    kubectl -n "$ns" describe pods >"$ARTIFACTS/$ns.pods.describe.txt" 2>&1 || true
    kubectl -n "$ns" describe deployments >"$ARTIFACTS/$ns.deployments.describe.txt" 2>&1 || true
    for pod in $(kubectl -n "$ns" get pods -o name 2>/dev/null); do
      for container in $(kubectl -n "$ns" get "$pod" -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}' 2>/dev/null); do
        kubectl -n "$ns" logs "$pod" -c "$container" >"$ARTIFACTS/$ns.${pod#pod/}.$container.log" 2>&1 || true
        if kubectl -n "$ns" logs "$pod" -c "$container" --previous >"$WORK/previous.log" 2>/dev/null; then
          mv "$WORK/previous.log" "$ARTIFACTS/$ns.${pod#pod/}.$container.previous.log"
        fi
      done
    done
  done
  kind export logs "$ARTIFACTS/kind" --name "$CLUSTER" >/dev/null 2>&1 || true
  if [ -n "$REMOTE_READY" ]; then
    kind export logs "$ARTIFACTS/kind-remote" --name "$REMOTE_CLUSTER" >/dev/null 2>&1 || true
    kubectl --kubeconfig "$WORK/remote.kubeconfig" -n kube-system logs "kube-apiserver-$REMOTE_CLUSTER-control-plane" \
      >"$ARTIFACTS/remote.kube-apiserver.log" 2>&1 || true
  fi
}

finish() {
  local rc=$?
  collect
  if [ "${KEEP_CLUSTER:-}" = 1 ]; then
    echo "e2e: KEEP_CLUSTER=1: clusters $CLUSTER and $REMOTE_CLUSTER kept (kind get kubeconfig --name NAME)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    kind delete cluster --name "$REMOTE_CLUSTER" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  if [ "$rc" -eq 0 ]; then echo "e2e: all checks passed"; else echo "e2e: FAILED (exit $rc); artifacts in $ARTIFACTS" >&2; fi
  exit "$rc"
}
trap finish EXIT

# --- helpers ---------------------------------------------------------------------------------------------

# Runs a command in the in-cluster client (curl), so requests go through the apps' Services.
client() { kubectl -n mx-e2e-dex exec deploy/client -c curl -- "$@"; }

# The value of a string field of a JSON object, compact or pretty-printed (tokens and issuers hold no
# quotes).
json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p"; }

# A JWT's payload, decoded (read only to check claims; the remote API server verifies signatures).
jwt_payload() {
  local part
  part=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
  case $((${#part} % 4)) in 2) part="$part==" ;; 3) part="$part=" ;; esac
  base64 -d <<<"$part" 2>/dev/null || true
}
jwt_iss() { jwt_payload "$1" | json_field iss; }

# A short fingerprint for messages: tokens themselves are never printed.
fingerprint() { printf '%s' "$1" | sha256sum | cut -c1-12; }

# What the echo app received in header $2, for a request with bearer token $3 through Service $1.
app_saw() {
  client curl -sS --fail-with-body --max-time 20 -H "Authorization: Bearer $3" "http://$1.muster.svc/header?key=$2"
}

# The sidecar's metrics, read through the app's Service (the sidecar answers /metrics itself).
sidecar_metrics() { client curl -sS --fail-with-body --max-time 20 "http://$1.muster.svc/metrics"; }

# The value of the sidecar metric line that has all the given label matchers, 0 when absent.
metric_value() {
  local metrics=$1 name=$2 line
  shift 2
  line=$(grep -E "^muster_exchange_sidecar_${name}\{" <<<"$metrics" || true)
  local matcher
  for matcher in "$@"; do line=$(grep -F "$matcher" <<<"$line" || true); done
  [ -n "$line" ] || { echo 0; return; }
  awk '{ sum += $NF } END { printf "%d\n", sum }' <<<"$line"
}

# The IP address of a kind cluster's node on the kind network (other clusters' containers reach it there).
node_ip() { docker inspect -f "{{(index .NetworkSettings.Networks \"$KIND_NETWORK\").IPAddress}}" "$1-control-plane"; }

# A SelfSubjectReview at the API server $3 (CA $2, base64 PEM) with bearer token $1, sent from the
# in-cluster client exactly as an auth-headers app sends it: the response body, whatever the status.
remote_review() {
  # shellcheck disable=SC2016 # expanded by the client's shell, from its positional parameters
  client sh -c 'printf %s "$2" | base64 -d >/tmp/remote-ca.crt && curl -sS --max-time 20 --cacert /tmp/remote-ca.crt -X POST \
    -H "Authorization: Bearer $1" -H "Content-Type: application/json" \
    -d "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"SelfSubjectReview\"}" \
    "$3/apis/authentication.k8s.io/v1/selfsubjectreviews"' sh "$1" "$2" "$3"
}

condition() { # MCPSERVER TYPE FIELD
  kubectl -n muster get "mcps/$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].$3}"
}

# A central ID token for jane, from the central Dex (resource-owner password grant), as Muster holds it.
central_token() {
  local body
  body=$(client curl -sS --fail-with-body --max-time 20 --cacert /etc/e2e-ca/ca.crt -u muster:e2e-muster-secret \
    -d grant_type=password -d username=jane@example.com -d password=password \
    --data-urlencode 'scope=openid profile email' "$CENTRAL_ISSUER/token") || fail "central Dex refused the password grant: $body"
  json_field id_token <<<"$body"
}

# --- 1. cluster, image, Dex --------------------------------------------------------------------------------

step "cluster $CLUSTER"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  REUSED=1
  echo "e2e: reusing cluster $CLUSTER (every Deployment is restarted onto this run's image and CA)"
else
  kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait 120s --kubeconfig "$WORK/kubeconfig"
fi
# Own kubeconfig files: the user's is never touched, and creating the second cluster cannot switch the
# context every command below uses.
kind get kubeconfig --name "$CLUSTER" >"$WORK/kubeconfig"
export KUBECONFIG=$WORK/kubeconfig
CLUSTER_READY=1

step "the e2e CA and the Dex serving certificate"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=muster-exchange-e2e-ca-$RUN_ID" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=dex.mx-e2e-dex.svc" -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' \
  "DNS:central-dex.mx-e2e-dex.svc,DNS:central-dex.mx-e2e-dex.svc.cluster.local,DNS:remote-dex.mx-e2e-dex.svc,DNS:remote-dex.mx-e2e-dex.svc.cluster.local" \
  >"$WORK/san.ext"
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial -days 2 \
  -extfile "$WORK/san.ext" -out "$WORK/tls.crt" 2>/dev/null

step "image $IMAGE (the product image plus the e2e CA in its system bundle)"
# The sidecar and the controller verify Dex against the image's system roots (and the controller's
# --ca-file, which the webhook cannot give the sidecar). The e2e Dex has a private CA, so this run's CA is
# appended to the bundle of the image built from this tree, under the tag the manifests name.
docker build -t "muster-exchange-e2e-build:$RUN_ID" .
cid=$(docker create "muster-exchange-e2e-build:$RUN_ID")
docker cp "$cid:/etc/ssl/certs/ca-certificates.crt" "$WORK/ca-certificates.crt"
docker rm "$cid" >/dev/null
cat "$WORK/ca.crt" >>"$WORK/ca-certificates.crt"
printf 'FROM muster-exchange-e2e-build:%s\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n' "$RUN_ID" >"$WORK/Dockerfile"
docker build -t "$IMAGE" -f "$WORK/Dockerfile" "$WORK"
kind load docker-image "$IMAGE" --name "$CLUSTER"
docker image rm "muster-exchange-e2e-build:$RUN_ID" >/dev/null 2>&1 || true

step "central and remote Dex, and the in-cluster client"
kubectl create namespace mx-e2e-dex --dry-run=client -o yaml | kubectl apply -f -
kubectl -n mx-e2e-dex create secret generic dex-tls --from-file=tls.crt="$WORK/tls.crt" \
  --from-file=tls.key="$WORK/tls.key" --from-file=ca.crt="$WORK/ca.crt" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f e2e/fixtures/dex.yaml
if [ -n "$REUSED" ]; then
  kubectl -n mx-e2e-dex rollout restart deploy/central-dex deploy/remote-dex deploy/client
  kubectl -n muster-exchange rollout restart deploy 2>/dev/null || echo "e2e: muster-exchange not installed yet"
fi
# The remote Dex opens its connector (discovery at the central Dex) at start, so the central one first.
kubectl -n mx-e2e-dex rollout status deploy/central-dex --timeout="$WAIT"
kubectl -n mx-e2e-dex rollout status deploy/remote-dex --timeout="$WAIT"
kubectl -n mx-e2e-dex rollout status deploy/client --timeout="$WAIT"
pass "central and remote Dex serve HTTPS"

# --- 2. the remote management cluster -----------------------------------------------------------------------

step "remote management cluster $REMOTE_CLUSTER, whose API server trusts the remote Dex"
if ! kind get clusters 2>/dev/null | grep -qx "$REMOTE_CLUSTER"; then
  kind create cluster --name "$REMOTE_CLUSTER" --image "$NODE_IMAGE" --wait 120s --kubeconfig "$WORK/remote.kubeconfig"
fi
REMOTE_READY=1
kind get kubeconfig --name "$REMOTE_CLUSTER" >"$WORK/remote.kubeconfig"
DEX_NODE_IP=$(node_ip "$CLUSTER")
REMOTE_IP=$(node_ip "$REMOTE_CLUSTER")
if [ -z "$DEX_NODE_IP" ] || [ -z "$REMOTE_IP" ]; then fail "no address on docker network $KIND_NETWORK for the kind nodes"; fi
REMOTE_NODE=$REMOTE_CLUSTER-control-plane
REMOTE_SERVER=https://$REMOTE_IP:6443
REMOTE_CA=$(kubectl --kubeconfig "$WORK/remote.kubeconfig" config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
[ -n "$REMOTE_CA" ] || fail "no certificate-authority-data in the remote cluster's kubeconfig"
# Tokens of the remote Dex, for its dex-k8s-authenticator client, name their user by email. The file sits
# under /etc/kubernetes/pki, which kubeadm already mounts into the API server; it is reloaded on change.
{
  echo "apiVersion: apiserver.config.k8s.io/v1beta1"
  echo "kind: AuthenticationConfiguration"
  echo "jwt:"
  echo "  - issuer:"
  echo "      url: $REMOTE_ISSUER"
  echo "      audiences: [dex-k8s-authenticator]"
  echo "      certificateAuthority: |"
  sed 's/^/        /' "$WORK/ca.crt"
  echo "    claimMappings:"
  echo "      username:"
  echo "        claim: email"
  echo "        prefix: \"\""
} >"$WORK/authentication-config.yaml"
docker exec "$REMOTE_NODE" mkdir -p /etc/kubernetes/pki/e2e-auth
docker cp "$WORK/authentication-config.yaml" "$REMOTE_NODE:/etc/kubernetes/pki/e2e-auth/authentication-config.yaml"
# The issuer's name resolves to the first cluster's node, where the remote Dex holds hostPort 443. Written
# before the API server restarts below: a host-network pod gets a copy of the node's /etc/hosts.
docker exec "$REMOTE_NODE" sh -c "grep -v ' remote-dex.mx-e2e-dex.svc\$' /etc/hosts >/tmp/hosts; echo '$DEX_NODE_IP remote-dex.mx-e2e-dex.svc' >>/tmp/hosts; cat /tmp/hosts >/etc/hosts"
manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
if ! docker exec "$REMOTE_NODE" grep -q -- --authentication-config= "$manifest"; then
  # Edited outside the manifests directory and renamed into it, so the kubelet never reads half a file.
  docker exec "$REMOTE_NODE" sh -c "sed 's#^    - kube-apiserver\$#    - kube-apiserver\n    - --authentication-config=/etc/kubernetes/pki/e2e-auth/authentication-config.yaml#' $manifest >/etc/kubernetes/kube-apiserver.yaml.new && mv /etc/kubernetes/kube-apiserver.yaml.new $manifest"
  docker exec "$REMOTE_NODE" grep -q -- --authentication-config= "$manifest" || fail "could not add --authentication-config to the remote API server"
fi
pass "remote API server configured to trust $REMOTE_ISSUER (audience dex-k8s-authenticator) at $REMOTE_SERVER"

# --- 3. install: docs/install.md, step by step --------------------------------------------------------------

step "install muster-exchange"
# install-step: crd
kubectl get crd mcpservers.muster.giantswarm.io >/dev/null 2>&1 || kubectl apply -f manifests/components/mcpserver-crd/muster.giantswarm.io_mcpservers.yaml
kubectl wait --for=condition=Established crd/mcpservers.muster.giantswarm.io --timeout=60s
# end-install-step
# install-step: muster-exchange
kubectl apply -k manifests/
kubectl -n muster-exchange rollout status deploy/muster-exchange-webhook --timeout=180s
kubectl -n muster-exchange rollout status deploy/muster-exchange-controller --timeout=180s
# end-install-step
ca=$(kubectl get mutatingwebhookconfiguration muster-exchange -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
[ -n "$ca" ] || fail "the webhook is Ready but no caBundle was published"
# Both self-signed replicas share one CA: the Secret exists and the published bundle holds one certificate.
kubectl -n muster-exchange get secret muster-exchange-webhook-ca >/dev/null || fail "no shared CA Secret muster-exchange-webhook-ca"
certs=$(printf '%s' "$ca" | base64 -d | grep -c 'BEGIN CERTIFICATE' || true)
[ "$certs" = 1 ] || fail "the caBundle holds $certs CAs; the replicas should share one"
pass "webhook Ready with its caBundle published; controller Ready"

# On a reused cluster: the app of a previous run goes, pods included, so the app step creates it afresh
# (injected by this run's webhook, with this run's image) and its waits see no pod of the old run.
remove_app() {
  kubectl -n muster delete "deploy/$APP" --ignore-not-found --wait=true
  for _ in $(seq 1 90); do
    [ -z "$(kubectl -n muster get pods -l "app=$APP" -o name)" ] && return 0
    sleep 2
  done
  fail "pods of the previous run's $APP did not go away"
}

# One topology, exactly as docs/install.md says (EXAMPLE, MCPSERVER, APP set by the caller).
install_topology() {
  # install-step: namespace
  kubectl apply -f "$EXAMPLE/namespace.yaml"
  # end-install-step
  # install-step: secrets
  kubectl apply -f "$EXAMPLE/credentials-secret.yaml"
  if [ -f "$EXAMPLE/endpoint-configmap.yaml" ]; then kubectl apply -f "$EXAMPLE/endpoint-configmap.yaml"; fi
  # end-install-step
  # install-step: mcpserver
  kubectl apply -f "$EXAMPLE/mcpserver.yaml"
  # end-install-step
  if [ -n "$REUSED" ]; then remove_app; fi
  # install-step: app
  kubectl apply -f "$EXAMPLE/app.yaml"
  kubectl -n muster rollout status "deploy/$APP" --timeout=300s
  kubectl -n muster wait pod -l "app=$APP" --for=condition=Ready --timeout=300s
  kubectl -n muster wait "mcps/$MCPSERVER" --for=condition=TokenExchangeReady --timeout=300s
  kubectl -n muster get mcps "$MCPSERVER" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}{"\n"}{end}'
  # end-install-step
}

# The fixtures, with the F endpoint ConfigMap naming the remote management cluster's API server and CA
# (made here, because both are this run's). The sidecar gets these two values, no credentials.
mkdir -p "$WORK/fixtures"
cp -R e2e/fixtures/muster-exchanges e2e/fixtures/sidecar-exchanges "$WORK/fixtures/"
printf '%s' "$REMOTE_CA" | base64 -d >"$WORK/remote-ca.crt" || fail "the remote cluster's certificate-authority-data is not base64"
kubectl -n muster create configmap cluster-b-endpoint --dry-run=client -o yaml \
  --from-literal=server="$REMOTE_SERVER" --from-file=ca.crt="$WORK/remote-ca.crt" \
  >"$WORK/fixtures/sidecar-exchanges/endpoint-configmap.yaml"

# --- 4. checks ----------------------------------------------------------------------------------------------

step "topology M (Muster exchanges): install"
EXAMPLE=$WORK/fixtures/muster-exchanges MCPSERVER=cluster-a APP=mcp-kubernetes-cluster-a
install_topology
pass "M: pod Ready, cluster-a TokenExchangeReady"

# In namespace muster, which now exists: a refusal must come from the webhook, not from a missing namespace.
step "validation refuses an incomplete MCPServer, naming the field"
if out=$(kubectl apply -f examples/mcpserver-invalid-incomplete.yaml 2>&1); then fail "invalid MCPServer admitted: $out"; fi
grep -q "spec.auth.tokenExchange.connectorId" <<<"$out" || fail "refusal does not name connectorId: $out"
pass "invalid MCPServer refused: $(head -c 200 <<<"$out")"

step "topology F (the sidecar exchanges): install"
EXAMPLE=$WORK/fixtures/sidecar-exchanges MCPSERVER=cluster-b APP=kubernetes-mcp-server-cluster-b
install_topology
pass "F: pod Ready, cluster-b TokenExchangeReady"

step "both sidecars were injected, each in its header mode"
for app in mcp-kubernetes-cluster-a:bearer kubernetes-mcp-server-cluster-b:auth-headers; do
  name=${app%%:*} mode=${app##*:}
  pod=$(kubectl -n muster get pod -l "app=$name" -o name | head -n 1)
  init=$(kubectl -n muster get "$pod" -o jsonpath='{.spec.initContainers[*].name}')
  [ "$init" = token-exchange ] || fail "$name: sidecar not injected (initContainers: $init)"
  config=$(kubectl -n muster get "$pod" -o jsonpath='{.spec.initContainers[0].env[?(@.name=="MUSTER_EXCHANGE_SIDECAR_CONFIG")].value}')
  grep -q "\"headerMode\":\"$mode\"" <<<"$config" || fail "$name: sidecar not in $mode mode: $config"
done
kubectl delete -f e2e/fixtures/plain-pod.yaml --ignore-not-found --wait=true
kubectl apply -f e2e/fixtures/plain-pod.yaml
[ -z "$(kubectl -n muster get pod plain -o jsonpath='{.spec.initContainers}')" ] || fail "the unannotated pod was injected"
pass "sidecar injected into the annotated pods in their modes, not into the unannotated one"

step "a central ID token from the central Dex"
CENTRAL=$(central_token)
[ -n "$CENTRAL" ] || fail "central Dex answered without an id_token"
[ "$(jwt_iss "$CENTRAL")" = "$CENTRAL_ISSUER" ] || fail "central token issuer is $(jwt_iss "$CENTRAL"), not $CENTRAL_ISSUER"
pass "central token $(fingerprint "$CENTRAL") issued by $CENTRAL_ISSUER"

step "F: Muster forwards the central token; the app sees the token the remote Dex issued, with cluster headers"
SVC_F=kubernetes-mcp-server-cluster-b
seen=$(app_saw "$SVC_F" Authorization "$CENTRAL") || fail "F: request through the Service failed: $seen"
forwarded=${seen#Bearer }
[ "$forwarded" != "$seen" ] || fail "F: the app got no bearer token (Authorization: $(head -c 80 <<<"$seen"))"
[ "$forwarded" != "$CENTRAL" ] || fail "F: the app got the central token itself: the sidecar did not exchange"
[ "$(jwt_iss "$forwarded")" = "$REMOTE_ISSUER" ] || fail "F: forwarded token issued by '$(jwt_iss "$forwarded")', not $REMOTE_ISSUER"
jwt_payload "$forwarded" | grep -q '"dex-k8s-authenticator"' || fail "F: forwarded token lacks the requiredAudiences peer dex-k8s-authenticator"
[ "$(app_saw "$SVC_F" kubernetes-authorization "$CENTRAL")" = "Bearer $forwarded" ] || fail "F: kubernetes-authorization differs from the exchanged token"
SERVER_SEEN=$(app_saw "$SVC_F" kubernetes-server "$CENTRAL")
[ "$SERVER_SEEN" = "$REMOTE_SERVER" ] || fail "F: kubernetes-server is '$SERVER_SEEN', not the endpoint ConfigMap's $REMOTE_SERVER"
CA_SEEN=$(app_saw "$SVC_F" kubernetes-certificate-authority-data "$CENTRAL")
[ "$CA_SEEN" = "$REMOTE_CA" ] || fail "F: kubernetes-certificate-authority-data is not the endpoint ConfigMap's CA"
metrics=$(sidecar_metrics "$SVC_F")
exchanges=$(metric_value "$metrics" exchanges_total 'cluster="cluster-b"' 'outcome="success"')
[ "$exchanges" = 1 ] || fail "F: 4 requests with one token made $exchanges successful exchanges, not exactly 1"
pass "F: app saw token $(fingerprint "$forwarded") from $REMOTE_ISSUER with server and CA; 1 exchange for 4 calls"

step "F: the remote API server authenticates jane with what the app received (token, server, CA)"
username=
for _ in $(seq 1 60); do
  review=$(remote_review "$forwarded" "$CA_SEEN" "$SERVER_SEEN" || true)
  username=$(json_field username <<<"$review")
  [ "$username" = jane@example.com ] && break
  sleep 3
done
[ "$username" = jane@example.com ] || fail "F: the remote API server did not authenticate the forwarded token as jane@example.com: $(head -c 400 <<<"$review")"
review=$(remote_review "$CENTRAL" "$CA_SEEN" "$SERVER_SEEN" || true)
grep -Eq '"code": *401' <<<"$review" || fail "F: the remote API server did not refuse the central token itself: $(head -c 400 <<<"$review")"
pass "F: SelfSubjectReview at $SERVER_SEEN says jane@example.com for the forwarded token, 401 for the central one"

step "M: Muster exchanges at the remote Dex itself; the sidecar passes its token through unchanged"
body=$(client curl -sS --fail-with-body --max-time 20 --cacert /etc/e2e-ca/ca.crt -u muster-token-exchange:e2e-exchange-secret \
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange --data-urlencode "subject_token=$CENTRAL" \
  -d subject_token_type=urn:ietf:params:oauth:token-type:id_token \
  -d requested_token_type=urn:ietf:params:oauth:token-type:id_token -d connector_id=central-dex \
  --data-urlencode 'scope=openid profile email groups audience:server:client_id:dex-k8s-authenticator' \
  "$REMOTE_ISSUER/token") || fail "M: the remote Dex refused Muster's exchange: $body"
MUSTERS=$(json_field access_token <<<"$body")
[ "$(jwt_iss "$MUSTERS")" = "$REMOTE_ISSUER" ] || fail "M: Muster's exchanged token is not from $REMOTE_ISSUER"
SVC_M=mcp-kubernetes-cluster-a
seen=$(app_saw "$SVC_M" Authorization "$MUSTERS") || fail "M: request through the Service failed: $seen"
[ "$seen" = "Bearer $MUSTERS" ] || fail "M: the app did not get Muster's token unchanged (got $(fingerprint "${seen#Bearer }"))"
[ -z "$(app_saw "$SVC_M" kubernetes-server "$MUSTERS")" ] || fail "M: bearer mode sent kubernetes-server"
metrics=$(sidecar_metrics "$SVC_M")
exchanges=$(metric_value "$metrics" exchanges_total 'cluster="cluster-a"' 'outcome="success"')
[ "$exchanges" = 0 ] || fail "M: passthrough made $exchanges exchanges at the remote Dex, not 0"
# Passthrough is decided on a cache miss: 2 calls with one token count 1.
passthrough=$(metric_value "$metrics" passthroughs_total 'cluster="cluster-a"')
[ "$passthrough" -ge 1 ] || fail "M: the sidecar counted no passthrough (passthroughs_total $passthrough)"
pass "M: app saw Muster's token $(fingerprint "$MUSTERS") unchanged; 0 exchanges, $passthrough passthroughs"

step "M: a client holding a central token (no Muster) still gets one exchange"
seen=$(app_saw "$SVC_M" Authorization "$CENTRAL") || fail "M: direct request failed: $seen"
forwarded=${seen#Bearer }
[ "$forwarded" != "$CENTRAL" ] || fail "M: the app got the central token itself"
[ "$(jwt_iss "$forwarded")" = "$REMOTE_ISSUER" ] || fail "M: the direct caller's token was not exchanged at $REMOTE_ISSUER"
exchanges=$(metric_value "$(sidecar_metrics "$SVC_M")" exchanges_total 'cluster="cluster-a"' 'outcome="success"')
[ "$exchanges" = 1 ] || fail "M: the direct caller made $exchanges exchanges, not 1"
pass "M: direct caller's central token exchanged once, app saw $(fingerprint "$forwarded")"

step "conditions: healthy MCPServers connected, the broken one Disconnected"
for mcps in cluster-a cluster-b; do
  [ "$(condition "$mcps" DexConnected status)" = True ] || fail "$mcps: DexConnected is not True: $(condition "$mcps" DexConnected message)"
  [ "$(condition "$mcps" TokenExchangeReady status)" = True ] || fail "$mcps: TokenExchangeReady is not True"
done
kubectl apply -f e2e/fixtures/broken-mcpserver.yaml
kubectl -n muster wait mcps/cluster-gone --timeout="$WAIT" \
  --for=jsonpath='{.status.conditions[?(@.type=="DexConnected")].reason}'=Disconnected
[ "$(condition cluster-gone DexConnected status)" = False ] || fail "cluster-gone: DexConnected is not False"
[ "$(condition cluster-gone TokenExchangeReady status)" = False ] || fail "cluster-gone: TokenExchangeReady is not False"
kubectl -n muster get mcps
kubectl -n muster get mcps -o jsonpath='{range .items[*]}{.metadata.name}:{range .status.conditions[*]} {.type}={.status}/{.reason}{end}{"\n"}{end}'
pass "cluster-a and cluster-b ready, cluster-gone DexConnected=False/Disconnected"

step "kubeconfig grants follow the organization label"
subject=system:serviceaccount:muster:mcp-kubernetes
kubectl create namespace org-acme --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace org-acme giantswarm.io/organization=acme --overwrite
kubectl -n org-acme create secret generic c1-kubeconfig --from-literal=value=x --dry-run=client -o yaml | kubectl apply -f -
for _ in $(seq 1 30); do
  kubectl auth can-i get secret/c1-kubeconfig -n org-acme --as="$subject" >/dev/null 2>&1 && break
  sleep 2
done
kubectl auth can-i get secret/c1-kubeconfig -n org-acme --as="$subject" >/dev/null || fail "kubeconfig grant missing"
if kubectl auth can-i list secrets -n org-acme --as="$subject" >/dev/null 2>&1; then fail "grant is broader than get on named Secrets"; fi
kubectl label namespace org-acme giantswarm.io/organization-
for _ in $(seq 1 30); do
  kubectl auth can-i get secret/c1-kubeconfig -n org-acme --as="$subject" >/dev/null 2>&1 || break
  sleep 2
done
if kubectl auth can-i get secret/c1-kubeconfig -n org-acme --as="$subject" >/dev/null 2>&1; then fail "grant survived the label removal"; fi
pass "kubeconfig grants follow the organization label"
