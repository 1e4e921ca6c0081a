#!/usr/bin/env python3
"""Turns the chart's rendered manifests into what `podman kube play` (4.3)
runs: the StatefulSet's pod (named STS-0, as Kubernetes names it), a
PersistentVolumeClaim per volumeClaimTemplate (a podman named volume), and
the ConfigMaps. Kubernetes objects podman has no use for (Services,
ServiceAccount, monitoring) are left out. Substitutions, all because of
podman, not the chart:
  - env from a Secret (secretKeyRef) gets the Secret's value inline: podman
    4.3's kube play stores a Secret it is given but cannot read it back;
  - pod annotations longer than 63 characters (the checksum/* ones) are
    left out: podman 4.3 holds annotation values to the label length limit;
  - the pod uses the host's network, so the test reaches trickled and
    trickled reaches the test PostgreSQL on loopback; podman 4.3 turns
    containerPorts into port mappings, which the host's network refuses,
    so they are left out (with the host's network there is nothing to map,
    and the probes name ports by number).

  kube_play.py RENDERED.yaml > PLAY.yaml
"""
import base64
import copy
import sys

import yaml


def main(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    out = [d for d in docs if d["kind"] == "ConfigMap"]
    for sts in (d for d in docs if d["kind"] == "StatefulSet"):
        name = sts["metadata"]["name"] + "-0"
        tmpl = copy.deepcopy(sts["spec"]["template"])
        spec = tmpl["spec"]
        spec["hostNetwork"] = True
        spec["restartPolicy"] = "Never"  # a crash shows as a failed test, not a restart loop
        volumes = spec.setdefault("volumes", [])
        for vct in sts["spec"].get("volumeClaimTemplates", []):
            claim = f"{vct['metadata']['name']}-{name}"
            out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim}, "spec": vct["spec"]})
            volumes.append({"name": vct["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}})
        for c in spec["containers"]:
            ports = {p["name"]: p["containerPort"] for p in c.pop("ports", [])}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                get = c.get(probe, {}).get("httpGet")
                if get and get.get("port") in ports:
                    get["port"] = ports[get["port"]]
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    data = secrets[ref["name"]]["data"][ref["key"]]
                    e.pop("valueFrom")
                    e["value"] = base64.b64decode(data).decode()
        out.append({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "labels": tmpl["metadata"].get("labels", {}),
                                 "annotations": {k: v for k, v in tmpl["metadata"].get("annotations", {}).items()
                                                 if len(str(v)) <= 63}},
                    "spec": spec})
    yaml.safe_dump_all(out, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main(sys.argv[1])
