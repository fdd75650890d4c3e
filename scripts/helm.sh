#!/usr/bin/env bash
# The origin Helm chart (deploy/helm/seedsync-origin) checked offline:
#   helm (v4, `go install` from the Go module proxy into .cache/bin, once), `helm lint --strict`,
#   `helm template` with the default values and with deploy/helm/ci-values.yaml, and the rendered
#   manifests validated against the Kubernetes schemas (PyPI kubernetes-validate, venv in .cache),
#   and every rendered container's environment run through `origin check-config`
#   (scripts/helm-check-config.py; secrets as stand-ins), so values the origin would refuse at
#   start fail here.
# Env: HELM_VERSION (v4.3.2), KUBERNETES_VERSIONS (schemas to validate against: the oldest
#      and newest supported here, "1.30.0 1.37.0"), KUBERNETES_VALIDATE_VERSION (1.37.0),
#      GO (the go command), ORIGIN_BIN (the origin binary; default the debug build, built if
#      missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HELM_VERSION="${HELM_VERSION:-v4.3.2}"
K8S_VERSIONS="${KUBERNETES_VERSIONS:-1.30.0 1.37.0}"
KV_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
CACHE="$ROOT/.cache"
BIN="$CACHE/bin/helm-$HELM_VERSION"
VENV="$CACHE/helm-venv"
CHART=deploy/helm/seedsync-origin
start=$SECONDS

if [[ ! -x "$BIN" ]]; then
  go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
  [[ -x "$go" ]] || { echo "helm.sh: go is required to build helm (or set GO=)" >&2; exit 1; }
  mkdir -p "$CACHE/bin" "$CACHE/go"
  tmpbin="$(mktemp -d)"
  echo "helm.sh: building helm $HELM_VERSION (go install helm.sh/helm/v4/cmd/helm, once)"
  GOBIN="$tmpbin" GOPATH="$CACHE/go" GOCACHE="$CACHE/go/build" GOMODCACHE="$CACHE/go/pkg/mod" \
    GOFLAGS="-trimpath -modcacherw" CGO_ENABLED=0 "$go" install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  mv "$tmpbin/helm" "$BIN" && rmdir "$tmpbin"
  # The build and module caches (about 1 GB) only serve building again; the binary is what stays.
  GOMODCACHE="$CACHE/go/pkg/mod" "$go" clean -modcache
  rm -rf "$CACHE/go/build"
fi
if [[ ! -x "$VENV/bin/kubernetes-validate" ]]; then
  echo "helm.sh: installing kubernetes-validate into $VENV (once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "kubernetes-validate==$KV_VERSION"
fi
export HELM_CACHE_HOME="$CACHE/helm/cache" HELM_CONFIG_HOME="$CACHE/helm/config" HELM_DATA_HOME="$CACHE/helm/data"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$BIN" lint --strict "$CHART"
"$BIN" lint --strict "$CHART" -f deploy/helm/ci-values.yaml
"$BIN" template seedsync "$CHART" --namespace seedsync > "$out/default.yaml"
"$BIN" template seedsync "$CHART" --namespace seedsync -f deploy/helm/ci-values.yaml > "$out/ci.yaml"
for f in "$out"/*.yaml; do
  echo "helm.sh: $(basename "$f"): $(grep -c '^kind:' "$f") objects ($(grep '^kind:' "$f" | sort | uniq -c | awk '{printf "%s %s, ", $1, $3}'))"
  for k in $K8S_VERSIONS; do
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$k" "$f"
  done
done
origin_bin="${ORIGIN_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/origin}"
if [[ ! -x "$origin_bin" ]]; then
  PATH="$HOME/.cargo/bin:$PATH" cargo build -q -p origin
fi
"$VENV/bin/python" scripts/helm-check-config.py "$origin_bin" "$out"/*.yaml
echo "helm.sh: ok ($((SECONDS - start)) s)"
