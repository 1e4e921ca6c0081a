#!/usr/bin/env python3
"""Tests of the trickle Helm chart (charts/trickle), without helm or a cluster.

For one value set (tests/deploy/values/CASE.yaml): render the chart with
chartrender (Helm's template engine: text/template + sprig, the values
checked against values.schema.json), lint the output with yamllint, validate
every object against the Kubernetes schemas (validate/validate.mjs, npm
package kubernetes-models, unknown fields included), then assert what the
case is about. Case "rejects" checks that bad values fail with the message
that names the problem.

  chart_test.py --tools DIR CASE      (DIR from setup-chart-tools.sh)
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(ROOT, "charts", "trickle")

failures = []
passes = 0


def check(cond, what):
    global passes
    if cond:
        passes += 1
    else:
        failures.append(what)
        print(f"FAILED: {what}")


def render(tools, values_files, notes=False, expect_ok=True):
    cmd = [os.path.join(tools, "chartrender"), "-chart", CHART]
    for f in values_files:
        cmd += ["-f", f]
    if notes:
        cmd.append("-notes")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if expect_ok and r.returncode != 0:
        sys.exit(f"render failed: {' '.join(cmd)}\n{r.stderr}")
    return r


def objects(text):
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(text) if o}


def lint_and_validate(tools, text, case):
    with tempfile.NamedTemporaryFile("w", suffix=f"-{case}.yaml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run(["yamllint", "-c", os.path.join(HERE, "yamllint.yaml"), path],
                           capture_output=True, text=True)
        errors = [l for l in r.stdout.splitlines() if " error " in l]
        print(r.stdout, end="")
        check(r.returncode == 0 and not errors, f"{case}: yamllint passes the rendered manifests")
        r = subprocess.run(["node", os.path.join(tools, "validate", "validate.mjs"), path],
                           capture_output=True, text=True)
        print(r.stdout, end="", file=sys.stdout)
        print(r.stderr, end="", file=sys.stderr)
        check(r.returncode == 0, f"{case}: every object is valid against the Kubernetes schemas")
    finally:
        os.unlink(path)


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def documented_env_vars():
    text = open(os.path.join(ROOT, "docs", "configuration.md")).read()
    return set(re.findall(r"`(TRICKLE_[A-Z_]+)`", text))


def workload(objs):
    sts = [o for (k, _), o in objs.items() if k == "StatefulSet"]
    check(len(sts) == 1, "exactly one StatefulSet")
    return sts[0]


def common_assertions(objs, case, cm_name):
    sts = workload(objs)
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    check(spec["replicas"] == 1, f"{case}: one replica (one consumer per slot)")
    check(spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items(),
          f"{case}: the selector matches the pod's labels")
    sc = c["securityContext"]
    psc = pod["securityContext"]
    check(psc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is True, f"{case}: runAsNonRoot")
    check(sc.get("readOnlyRootFilesystem") is True, f"{case}: read-only root filesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{case}: no privilege escalation")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{case}: all capabilities dropped")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{case}: RuntimeDefault seccomp")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{case}: liveness on /healthz")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{case}: readiness on /readyz")
    check(c["startupProbe"]["httpGet"]["path"] == "/healthz", f"{case}: startup probe on /healthz")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(set(ports) == {"grpc", "http"}, f"{case}: ports grpc and http")
    check(pod["terminationGracePeriodSeconds"] >= 10, f"{case}: grace period covers the shutdown of admin calls")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    check(mounts.get("data") == "/var/lib/trickle/data", f"{case}: data volume at /var/lib/trickle/data")
    # Settings: every variable the ConfigMap sets is one trickled documents.
    cm = objs[("ConfigMap", cm_name)]
    documented = documented_env_vars() | {"TRICKLE_ADDRESS"}  # the CLI's (docs/cli.md)
    unknown = set(cm["data"]) - documented
    check(not unknown, f"{case}: ConfigMap sets only documented TRICKLE_* variables (unknown: {unknown})")
    check(cm["data"]["TRICKLE_DATA_DIR"] == mounts.get("data"), f"{case}: TRICKLE_DATA_DIR is the data volume")
    check(cm["data"]["TRICKLE_GRPC_ADDRESS"] == f"0.0.0.0:{ports['grpc']}", f"{case}: gRPC on 0.0.0.0")
    check(cm["data"]["TRICKLE_HTTP_ADDRESS"] == f"0.0.0.0:{ports['http']}", f"{case}: HTTP on 0.0.0.0")
    check(c["envFrom"][0]["configMapRef"]["name"] == cm_name, f"{case}: env from the ConfigMap")
    check(all(isinstance(v, str) for v in cm["data"].values()), f"{case}: ConfigMap values are strings")
    # Services select the pod and reach its named ports.
    for (kind, name), o in objs.items():
        if kind == "Service":
            check(o["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items(),
                  f"{case}: Service {name} selects the pod")
            check({p["targetPort"] for p in o["spec"]["ports"]} <= set(ports), f"{case}: Service {name} targets named ports")
    check(("Service", spec["serviceName"]) in objs and objs[("Service", spec["serviceName"])]["spec"].get("clusterIP") == "None",
          f"{case}: the governing Service is headless")
    return sts, pod, c


def case_default(tools, values):
    out = render(tools, values).stdout
    objs = objects(out)
    lint_and_validate(tools, out, "default")
    sts, pod, c = common_assertions(objs, "default", "trickle")
    check(set(k for k, _ in objs) == {"ConfigMap", "Secret", "Service", "ServiceAccount", "StatefulSet"},
          "default: no monitoring objects or NetworkPolicy unless asked for")
    vct = sts["spec"]["volumeClaimTemplates"][0]
    check(vct["metadata"]["name"] == "data" and vct["spec"]["resources"]["requests"]["storage"] == "10Gi",
          "default: a 10Gi volumeClaimTemplate named data")
    check(sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"},
          "default: the change log's claim is retained")
    secret = objs[("Secret", "trickle")]
    dsn = base64.b64decode(secret["data"]["dsn"]).decode()
    check(dsn.startswith("host=db.example"), "default: the Secret holds the DSN")
    ref = env_of(c)["TRICKLE_DSN"]["valueFrom"]["secretKeyRef"]
    check(ref == {"name": "trickle", "key": "dsn"}, "default: TRICKLE_DSN from the chart's Secret")
    check("TRICKLE_AUTH_TOKEN" not in env_of(c), "default: no token variable without a token")
    check("TRICKLE_DSN" not in objs[("ConfigMap", "trickle")]["data"], "default: the DSN is not in the ConfigMap")
    check(c["image"] == "localhost/trickle:0.1.0", "default: image tag is the appVersion")
    check(pod["automountServiceAccountToken"] is False, "default: no API token mounted")
    cm = objs[("ConfigMap", "trickle")]["data"]
    check(cm["TRICKLE_SLOT_NAME"] == "trickle" and cm["TRICKLE_MAX_PARALLEL_WORKERS"] == "2",
          "default: settings carry values.yaml's defaults")
    notes = render(tools, values, notes=True).stdout
    check("pg_replication_slots" in notes and "slot_name = 'trickle'" in notes, "default: NOTES show how to check the slot")
    check("trickle create" in notes, "default: NOTES show how to create a stream table")
    check("pg_drop_replication_slot('trickle')" in notes, "default: NOTES say how to drop the slot")
    check("WARNING: the admin RPC has no token" in notes, "default: NOTES warn about the missing token")


def case_monitoring(tools, values):
    out = render(tools, values).stdout
    objs = objects(out)
    lint_and_validate(tools, out, "monitoring")
    common_assertions(objs, "monitoring", "trickle")
    rule = objs.get(("PrometheusRule", "trickle"))
    check(rule is not None, "monitoring: a PrometheusRule")
    source = yaml.safe_load(open(os.path.join(ROOT, "monitoring", "prometheus", "trickle-alerts.yml")))
    check(rule["spec"]["groups"] == source["groups"],
          "monitoring: the PrometheusRule carries exactly monitoring/prometheus/trickle-alerts.yml's groups")
    check(rule["metadata"]["labels"].get("release") == "kube-prometheus-stack", "monitoring: rule labels applied")
    sm = objs.get(("ServiceMonitor", "trickle"))
    check(sm is not None, "monitoring: a ServiceMonitor")
    ep = sm["spec"]["endpoints"][0]
    check(ep["port"] == "http" and ep["path"] == "/metrics" and ep["interval"] == "15s", "monitoring: scrapes /metrics")
    svc = objs[("Service", "trickle")]
    job = svc["metadata"]["labels"].get(sm["spec"]["jobLabel"])
    check(job == "trickle", "monitoring: the scrape job is named trickle, as TrickleDown's up{job=\"trickle\"} expects")
    check('up{job="trickle"}' in str(source), "monitoring: the rules select job trickle")
    check(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(),
          "monitoring: the ServiceMonitor selects the Service")
    np = objs.get(("NetworkPolicy", "trickle"))
    check(np is not None, "monitoring: a NetworkPolicy")
    ingress = np["spec"]["ingress"]
    grpc_rules = [r for r in ingress if any(p["port"] == "grpc" for p in r["ports"])]
    check(len(grpc_rules) == 1 and grpc_rules[0]["from"] == [{"podSelector": {"matchLabels": {"app": "trickle-admin"}}}],
          "monitoring: the admin RPC only from grpcFrom")
    check(np["spec"]["policyTypes"] == ["Ingress", "Egress"], "monitoring: egress restricted")
    egress_ports = [p["port"] for r in np["spec"]["egress"] for p in r["ports"]]
    check(53 in egress_ports and 5432 in egress_ports, "monitoring: egress to DNS and the database")


def case_existing_secret(tools, values):
    out = render(tools, values).stdout
    objs = objects(out)
    lint_and_validate(tools, out, "existing-secret")
    _, _, c = common_assertions(objs, "existing-secret", "trickle")
    check(not any(k == "Secret" for k, _ in objs), "existing-secret: the chart makes no Secret")
    env = env_of(c)
    check(env["TRICKLE_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "pg-credentials", "key": "uri"},
          "existing-secret: TRICKLE_DSN from the existing Secret and key")
    check(env["TRICKLE_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "trickle-admin-token", "key": "token"},
          "existing-secret: TRICKLE_AUTH_TOKEN from the existing Secret")
    notes = render(tools, values, notes=True).stdout
    check("has no token" not in notes, "existing-secret: no token warning with a token")


def case_custom(tools, values):
    out = render(tools, values).stdout
    objs = objects(out)
    lint_and_validate(tools, out, "custom")
    sts, pod, c = common_assertions(objs, "custom", "orders-trickle")
    check(sts["metadata"]["name"] == "orders-trickle", "custom: fullnameOverride names the objects")
    check(c["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
          "custom: resources as given")
    vct = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    check(vct["storageClassName"] == "fast-ssd" and vct["resources"]["requests"]["storage"] == "50Gi",
          "custom: storage class and size")
    check(sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete", "custom: retention policy")
    check(pod["terminationGracePeriodSeconds"] == 600, "custom: grace period")
    check(c["image"] == "registry.example/platform/trickle:0.1.0-rc1" and c["imagePullPolicy"] == "Always",
          "custom: image and pull policy")
    check(pod["imagePullSecrets"] == [{"name": "regcred"}], "custom: pull secret")
    cm = objs[("ConfigMap", "orders-trickle")]["data"]
    check(cm["TRICKLE_SLOT_NAME"] == "orders_slot" and cm["TRICKLE_PUBLICATION_NAME"] == "orders_pub"
          and cm["TRICKLE_MAX_PARALLEL_WORKERS"] == "4" and cm["TRICKLE_DEBOUNCE"] == "50ms"
          and cm["TRICKLE_PROTOCOL_VERSION"] == "2" and cm["TRICKLE_SET_REPLICA_IDENTITY"] == "true",
          "custom: settings reach the ConfigMap")
    env = env_of(c)
    check(env["TRICKLE_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "orders-trickle", "key": "token"},
          "custom: token from the chart's Secret")
    secret = objs[("Secret", "orders-trickle")]["data"]
    check(base64.b64decode(secret["token"]).decode() == "a-long-random-token", "custom: the Secret holds the token")
    check(env["PGSSLROOTCERT"]["value"] == "/etc/trickle/ca/ca.crt", "custom: extraEnv")
    check({"name": "db-ca", "mountPath": "/etc/trickle/ca", "readOnly": True} in c["volumeMounts"], "custom: extra mount")
    check(pod["nodeSelector"] == {"workload": "databases"} and pod["tolerations"][0]["key"] == "dedicated",
          "custom: scheduling")
    check(pod["serviceAccountName"] == "orders-trickle"
          and objs[("ServiceAccount", "orders-trickle")]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws"),
          "custom: ServiceAccount with IAM annotation")
    # A changed setting changes the pod template (checksum annotation), so the pod restarts.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("config:\n  maxParallelWorkers: 5\n")
    again = objects(render(tools, values + [f.name]).stdout)
    os.unlink(f.name)
    a = sts["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = workload(again)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    check(a != b, "custom: a changed setting changes the pod template's checksum")


def case_rejects(tools, _values):
    def rejected(doc, expect, what):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(doc)
        r = render(tools, [f.name], expect_ok=False)
        os.unlink(f.name)
        ok = r.returncode != 0 and all(e in r.stderr for e in expect)
        if not ok:
            print(f"  stderr: {r.stderr.strip()}")
        check(ok, f"rejects: {what}")

    rejected("{}\n", ["set database.dsn", "database.existingSecret"], "no database named")
    rejected("database: {dsn: x}\nconfig: {maxParallelWorkers: 33}\n",
             ["config.maxParallelWorkers: Must be less than or equal to 32"], "too many workers (schema)")
    rejected("database: {dsn: x}\nresources: {limit: {memory: 1Gi}}\n",
             ["resources: Additional property limit is not allowed"], "a misspelt value (schema)")
    rejected("database: {dsn: x}\nreplicas: 2\n",
             ["Additional property replicas is not allowed"], "replicas is not a value (one consumer per slot)")
    rejected("database: {dsn: x}\nconfig: {debounce: 10}\n", ["config.debounce: Invalid type"], "a duration as a number")
    rejected("database: {dsn: x}\nterminationGracePeriodSeconds: 5\n",
             ["terminationGracePeriodSeconds: Must be greater than or equal to 10"], "a grace period too short for a clean stop")
    rejected("database: {dsn: x}\nnetworkPolicy: {enabled: true, egress: {enabled: true}}\n",
             ["networkPolicy.egress.databaseTo"], "egress restricted without the database's address")
    rejected("database: {dsn: x}\nconfig: {slotName: Bad-Name}\n", ["config.slotName"], "an invalid slot name")


OPAQUE = {"resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe",
          "startupProbe", "persistence.retentionPolicy"}


def value_paths(v, prefix=""):
    """The chart's values as dotted paths, stopping at Kubernetes objects."""
    if isinstance(v, dict) and v and prefix not in OPAQUE:
        for k, x in v.items():
            yield from value_paths(x, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def case_consistency(_tools, _values):
    a = open(os.path.join(ROOT, "monitoring", "prometheus", "trickle-alerts.yml"), "rb").read()
    b = open(os.path.join(CHART, "files", "trickle-alerts.yml"), "rb").read()
    check(a == b, "consistency: charts/trickle/files/trickle-alerts.yml is identical to monitoring/prometheus/"
          "trickle-alerts.yml (copy it over after changing the rules)")
    readme = open(os.path.join(CHART, "README.md")).read()
    values = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))
    undocumented = [p for p in value_paths(values) if f"`{p}`" not in readme]
    check(not undocumented, f"consistency: the chart README documents every value (missing: {undocumented})")
    sys.path.insert(0, HERE)
    import values_table
    check(values_table.table() in readme, "consistency: the chart README's values table is values.yaml's "
          "(python3 tests/deploy/values_table.py --update)")
    schema = json.load(open(os.path.join(CHART, "values.schema.json")))
    def in_schema(path):
        node = schema
        for k in path.split("."):
            node = node.get("properties", {}).get(k)
            if node is None:
                return False
        return True
    unschemed = [p for p in value_paths(values) if not in_schema(p)]
    check(not unschemed, f"consistency: values.schema.json describes every value (missing: {unschemed})")
    r = subprocess.run(["yamllint", "-c", os.path.join(HERE, "yamllint.yaml"), CHART + "/values.yaml",
                        CHART + "/Chart.yaml", os.path.join(HERE, "values")], capture_output=True, text=True)
    print(r.stdout, end="")
    check(r.returncode == 0, "consistency: yamllint passes values.yaml, Chart.yaml and the test value sets")


CASES = {
    "default": case_default,
    "monitoring": case_monitoring,
    "existing-secret": case_existing_secret,
    "custom": case_custom,
    "rejects": case_rejects,
    "consistency": case_consistency,
}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    values_file = os.path.join(HERE, "values", f"{args.case}.yaml")
    values = [values_file] if os.path.exists(values_file) else []
    CASES[args.case](args.tools, values)
    print(f"{passes} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)
