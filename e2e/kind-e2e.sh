#!/usr/bin/env bash
# End-to-end on kind (called by e2e/run.sh once kind, docker and kubectl are known to be there).
# Builds the image, installs CRD + webhook + controller, and checks what a platform engineer sees:
# refusals with clear messages, defaulting, injection (and non-injection), grants, per-cluster conditions.
# Set KEEP_CLUSTER=1 to keep the cluster for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-muster-exchange-e2e}
IMAGE=ghcr.io/giantswarm/muster-exchange:0.1.0
NODE_IMAGE=${NODE_IMAGE:-kindest/node:v1.33.1}   # k8s-openapi v1_33: the oldest API level we build against
fail() { echo "e2e: FAIL: $*"; exit 1; }
pass() { echo "e2e: ok: $*"; }

cleanup() { [ "${KEEP_CLUSTER:-}" = 1 ] || kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait 120s
kubectl config use-context "kind-$CLUSTER" >/dev/null
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

kubectl apply -f manifests/namespace.yaml -f manifests/crds/
kubectl wait --for=condition=Established crd/mcpservers.muster.giantswarm.io --timeout=60s
# The default install (kustomize): namespace, webhook, controller, with the image set in one place.
kubectl apply -k manifests/
kubectl -n muster-exchange rollout status deploy/muster-exchange-webhook --timeout=180s
kubectl -n muster-exchange rollout status deploy/muster-exchange-controller --timeout=180s
# The self-signed CA must reach both webhook configurations before admission works.
for i in $(seq 1 60); do
  ca=$(kubectl get mutatingwebhookconfiguration muster-exchange -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
  [ -n "$ca" ] && break; sleep 2
done
[ -n "$ca" ] || fail "caBundle was never published"
# Both self-signed replicas share one CA: the Secret exists and the published bundle holds one certificate.
kubectl -n muster-exchange get secret muster-exchange-webhook-ca >/dev/null || fail "no shared CA Secret"
certs=$(printf '%s' "$ca" | base64 -d | grep -c 'BEGIN CERTIFICATE')
[ "$certs" = 1 ] || fail "caBundle holds $certs CAs, expected the one shared CA"
pass "webhook and controller running, caBundle published"

kubectl create namespace muster --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace muster exchange.muster.giantswarm.io/injection=enabled --overwrite

# 1. Validation: an incomplete exchange config is refused with the field and the fix.
if out=$(kubectl apply -f examples/mcpserver-invalid-incomplete.yaml 2>&1); then fail "invalid MCPServer admitted"; fi
grep -q "spec.auth.tokenExchange.connectorId" <<<"$out" || fail "refusal does not name connectorId: $out"
pass "invalid MCPServer refused: $(head -c 200 <<<"$out")"

# 2. Defaulting and warnings on a valid one.
out=$(kubectl apply -f examples/mcpserver-cluster-a.yaml 2>&1)
scopes=$(kubectl -n muster get mcps cluster-a -o jsonpath='{.spec.auth.tokenExchange.scopes}')
[ "$scopes" = "openid profile email groups" ] || fail "scopes not defaulted: $scopes"
pass "valid MCPServer admitted and defaulted"

# 3. Injection: the annotated Deployment's pods get the native sidecar; an unannotated pod does not.
kubectl -n muster create secret generic cluster-a-kubeconfig --from-literal=value='apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://10.0.0.1:6443"}}]
contexts: [{name: a, context: {cluster: a, user: a}}]
current-context: a
users: [{name: a, user: {}}]' --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f examples/mcp-kubernetes-deployment.yaml
for i in $(seq 1 30); do
  pod=$(kubectl -n muster get pod -l app=mcp-kubernetes-cluster-a -o name | head -1); [ -n "$pod" ] && break; sleep 2
done
[ -n "$pod" ] || fail "no pod for the annotated Deployment"
init=$(kubectl -n muster get "$pod" -o jsonpath='{.spec.initContainers[*].name}')
[ "$init" = "token-exchange" ] || fail "sidecar not injected (initContainers: $init)"
kubectl -n muster run plain --image=registry.k8s.io/pause:3.10 --restart=Never >/dev/null
[ -z "$(kubectl -n muster get pod plain -o jsonpath='{.spec.initContainers}')" ] || fail "unannotated pod was injected"
pass "sidecar injected into annotated pods only"

# 4. Grants: an organization namespace's kubeconfig Secret becomes readable by the grant subject only.
kubectl create namespace org-acme --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace org-acme giantswarm.io/organization=acme --overwrite
kubectl -n org-acme create secret generic c1-kubeconfig --from-literal=value=x --dry-run=client -o yaml | kubectl apply -f -
for i in $(seq 1 30); do
  kubectl auth can-i get secret/c1-kubeconfig -n org-acme --as=system:serviceaccount:muster:mcp-kubernetes >/dev/null 2>&1 && break; sleep 2
done
kubectl auth can-i get secret/c1-kubeconfig -n org-acme --as=system:serviceaccount:muster:mcp-kubernetes >/dev/null || fail "kubeconfig grant missing"
if kubectl auth can-i list secrets -n org-acme --as=system:serviceaccount:muster:mcp-kubernetes >/dev/null 2>&1; then fail "grant is broader than get on named Secrets"; fi
kubectl label namespace org-acme giantswarm.io/organization-
for i in $(seq 1 30); do
  kubectl auth can-i get secret/c1-kubeconfig -n org-acme --as=system:serviceaccount:muster:mcp-kubernetes >/dev/null 2>&1 || break; sleep 2
done
if kubectl auth can-i get secret/c1-kubeconfig -n org-acme --as=system:serviceaccount:muster:mcp-kubernetes >/dev/null 2>&1; then fail "grant survived the label removal"; fi
pass "kubeconfig grants follow the organization label"

# 5. Conditions: cluster-a's Dex does not exist here, so it must read Disconnected, visibly.
kubectl -n muster wait mcps/cluster-a --timeout=180s \
  --for=jsonpath='{.status.conditions[?(@.type=="Connected")].reason}'=Disconnected
kubectl -n muster get mcps
pass "unreachable remote Dex reported as Disconnected"

echo "e2e: all checks passed"
