#!/usr/bin/env python3
"""Checks on the objects `helm template` rendered from helm/telemesh (used by chart-checks).

    chart_checks.py policy RENDERED.yaml
        Pod Security "restricted", probes, resources, recommended labels, and that secrets
        reach the pods only through secretKeyRef (never the ConfigMap).
    chart_checks.py roundtrip RENDERED.yaml --bin TELEMESH --chart DIR [--values FILE]...
        Feeds the rendered config file to `telemesh check-config`, alone and with the
        environment of each rendered Deployment (secrets replaced by placeholders); each run
        must exit 0 and show the values the chart meant (every value on its config key).
        With --skip-unknown-sections, a config using a section this binary lacks prints
        "skip …" instead (for sections that arrive with later issues).
    chart_checks.py inputs RENDERED.yaml
        Every input file the rendered config names (incident_response.runbook_dir and
        roster_file) is mounted read-only into that service's container from a volume of its
        pod, and a ConfigMap the chart renders for it holds the files (runbooks that parse as
        front matter with id, owner and last_reviewed; the roster as TOML with a rotation);
        every extraVolumeMounts entry names a volume of the pod.
    chart_checks.py extract-config RENDERED.yaml OUT.toml
        Writes the rendered config file.
    chart_checks.py docker-context ROOT OUT
        Copies ROOT into OUT as `docker build ROOT` would send it, after ROOT/.dockerignore
        (so the caller can check that the image's build context is a loadable workspace).

Prints one line per check, "ok <what>", "skip <what>" or "FAIL <what>" followed by indented
details; exits 1 when any check failed. Needs PyYAML (in the chart-checks venv); TOML is
read with tomllib (Python 3.11+).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

import yaml

RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
)
SERVICES = ("aggregator", "fix-pilot", "ingest", "kafka-readiness", "incident-response",
            "cache-health", "system-validation", "ci")
CONFIG_KEY = "telemesh.toml"
# Env vars that carry secrets (TELEMESH__KAFKA__PASSWORD, SLACK_WEBHOOK_URL, SMTP_PASSWORD, …):
# they must come from a Secret.
SECRET_VARS = ("PASSWORD", "TOKEN", "WEBHOOK", "SECRET", "JOURNAL__URL", "CACHE_HEALTH__URL")
PLACEHOLDER_DSN = "postgres://telemesh:placeholder-secret@journal.invalid:5432/telemesh"
# The Redis URL of cache-health (it must be redis://…), its password a placeholder.
PLACEHOLDER_REDIS = "redis://telemesh:placeholder-secret@redis.invalid:6379/0"


class Report:
    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def check(self, what: str, problems: list[str]) -> None:
        if problems:
            self.failed += 1
            print(f"FAIL {what}")
            for p in problems:
                print(f"       {p}")
        else:
            self.passed += 1
            print(f"ok   {what}")


def load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name_of(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def config_maps(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] == "ConfigMap" and CONFIG_KEY in d.get("data", {})]


def deployments(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] == "Deployment"]


def component(obj: dict) -> str:
    return obj["metadata"]["labels"].get("app.kubernetes.io/component", "")


# ---------------------------------------------------------------------------------------------
# policy


def pod_problems(obj: dict) -> list[str]:
    """Pod Security Standards "restricted" plus the chart's own rules, for one workload."""
    p: list[str] = []
    spec = obj["spec"]["template"]["spec"]
    psc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            p.append(f"{field} is set")
    if spec.get("automountServiceAccountToken") is not False:
        p.append("automountServiceAccountToken is not false")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        p.append("pod seccompProfile is not RuntimeDefault")
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            p.append(f"volume {vol['name']} is a hostPath")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        csc = c.get("securityContext") or {}
        where = f"container {c['name']}"
        if csc.get("allowPrivilegeEscalation") is not False:
            p.append(f"{where}: allowPrivilegeEscalation is not false")
        if csc.get("privileged"):
            p.append(f"{where}: privileged")
        if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
            p.append(f"{where}: capabilities.drop lacks ALL")
        if (csc.get("capabilities") or {}).get("add"):
            p.append(f"{where}: adds capabilities")
        if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            p.append(f"{where}: runAsNonRoot is not true")
        if (csc.get("runAsUser", psc.get("runAsUser")) or 0) == 0:
            p.append(f"{where}: runAsUser is 0 or unset (a named image user cannot be verified)")
        if csc.get("readOnlyRootFilesystem") is not True:
            p.append(f"{where}: readOnlyRootFilesystem is not true")
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            p.append(f"{where}: seccompProfile is {seccomp}")
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(kind) or {}):
                    p.append(f"{where}: no {kind}.{r}")
        mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
        if "/tmp" not in mounts:
            p.append(f"{where}: no writable /tmp volume (the root filesystem is read-only)")
        for env in c.get("env") or []:
            n = env["name"]
            if any(s in n for s in SECRET_VARS):
                if "secretKeyRef" not in (env.get("valueFrom") or {}):
                    p.append(f"{where}: {n} is not taken from a Secret")
    return p


def service_problems(obj: dict, cm_names: set[str]) -> list[str]:
    """What every telemesh Deployment must have."""
    p: list[str] = []
    name = component(obj)
    spec = obj["spec"]["template"]["spec"]
    c = spec["containers"][0]
    args = c.get("args") or []
    if args[:2] != ["serve", name]:
        p.append(f"args are {args}, want serve {name} …")
    if "--config" not in args:
        p.append("no --config argument")
    probes = {
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
        "startupProbe": "/health/live",
    }
    for probe, path in probes.items():
        got = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
        if got != path:
            p.append(f"{probe} path is {got}, want {path}")
    env = {e["name"]: e for e in c.get("env") or []}
    inst = env.get("TELEMESH__SERVICE__INSTANCE", {})
    if (inst.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        p.append("TELEMESH__SERVICE__INSTANCE is not the pod name")
    config_vols = [v for v in spec.get("volumes") or [] if "configMap" in v]
    if not any(v["configMap"]["name"] in cm_names for v in config_vols):
        p.append("the config ConfigMap is not mounted")
    if "checksum/config" not in (obj["spec"]["template"]["metadata"].get("annotations") or {}):
        p.append("no checksum/config annotation: config changes would not roll the pods")
    if name == "fix-pilot":
        if (obj["spec"].get("strategy") or {}).get("type") != "Recreate":
            p.append("fix-pilot must use the Recreate strategy (one FIX session at a time)")
        if obj["spec"].get("replicas", 1) > 1:
            p.append("fix-pilot has more than one replica")
        writable = [m for m in c.get("volumeMounts") or [] if m["name"] == "fix-store" and not m.get("readOnly")]
        if not writable:
            p.append("fix-pilot has no writable sequence-store volume")
    return p


def config_problems(cm: dict) -> list[str]:
    p: list[str] = []
    text = cm["data"][CONFIG_KEY]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return [f"{CONFIG_KEY} is not TOML: {e}"]
    if "password" in doc.get("kafka", {}):
        p.append("kafka.password is in the ConfigMap")
    if "url" in doc.get("journal", {}):
        p.append("journal.url is in the ConfigMap")
    if "service" in doc and "instance" in doc["service"]:
        p.append("service.instance is in the ConfigMap (it is the pod name)")
    alerting = doc.get("alerting", {})
    if "api_token" in alerting:
        p.append("alerting.api_token is in the ConfigMap")
    for n, ch in enumerate(alerting.get("channels", [])):
        for key in ("url", "token", "password"):
            if key in ch:
                p.append(f"alerting.channels[{n}].{key} is in the ConfigMap")
    for section, keys in (("cache_health", ("url",)), ("system_validation", ("api_token",)),
                          ("ci", ("webhook_secret", "api_token", "github_token", "aggregator_token"))):
        for key in keys:
            if key in doc.get(section, {}):
                p.append(f"{section}.{key} is in the ConfigMap")
    for line in text.splitlines():
        if "://" in line and "@" in line:
            p.append(f"a URL with credentials: {line.strip()}")
    return p


def cmd_policy(args: argparse.Namespace) -> int:
    docs = load(args.rendered)
    r = Report()
    label_problems = []
    for d in docs:
        labels = d["metadata"].get("labels") or {}
        missing = [label for label in RECOMMENDED_LABELS if label not in labels]
        if missing:
            label_problems.append(f"{name_of(d)} lacks {', '.join(missing)}")
        if d["kind"] in ("Deployment", "Job"):
            tmpl = d["spec"]["template"]["metadata"].get("labels") or {}
            missing = [label for label in RECOMMENDED_LABELS if label not in tmpl]
            if missing:
                label_problems.append(f"{name_of(d)} pod template lacks {', '.join(missing)}")
    r.check(f"recommended app.kubernetes.io/* labels on all {len(docs)} objects", label_problems)

    cms = config_maps(docs)
    if len(cms) != 1:
        r.check("one config ConfigMap", [f"found {len(cms)}"])
        return 1
    r.check("config file is TOML and holds no secrets", config_problems(cms[0]))

    cm_names = {cms[0]["metadata"]["name"]}
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            r.check(f"{name_of(d)}: restricted pod security, resources, secrets via secretKeyRef", pod_problems(d))
        if d["kind"] == "Deployment":
            r.check(f"{name_of(d)}: serve <service>, probes, config mount", service_problems(d, cm_names))

    deps = {component(d): d for d in deployments(docs)}
    unknown = [c for c in deps if c not in SERVICES]
    r.check("Deployments are telemesh services", [f"unknown component {u}" for u in unknown])
    if "aggregator" in deps:
        sel = deps["aggregator"]["spec"]["selector"]["matchLabels"]
        problems = []
        for kind in ("Service", "PodDisruptionBudget"):
            objs = [d for d in docs if d["kind"] == kind and component(d) == "aggregator"]
            if not objs:
                if kind == "Service" and not args.expect_service:
                    continue
                problems.append(f"no {kind} for the aggregator")
            for o in objs:
                got = o["spec"]["selector"] if kind == "Service" else o["spec"]["selector"]["matchLabels"]
                if got != sel:
                    problems.append(f"{name_of(o)} selects {got}, the aggregator pods are {sel}")
        r.check("aggregator Service and PodDisruptionBudget select the aggregator pods", problems)
    if "ci" in deps:
        # GitHub delivers its webhooks to the ci service: it must be reachable through a Service.
        sel = deps["ci"]["spec"]["selector"]["matchLabels"]
        services = [d for d in docs if d["kind"] == "Service" and component(d) == "ci"]
        problems = [] if services or not args.expect_service else ["no Service for the ci webhook receiver"]
        problems += [f"{name_of(o)} selects {o['spec']['selector']}, the ci pods are {sel}"
                     for o in services if o["spec"]["selector"] != sel]
        r.check("the ci webhook receiver has a Service selecting the ci pods", problems)
    return 1 if r.failed else 0


# ---------------------------------------------------------------------------------------------
# round trip through `telemesh check-config`


def container_env(dep: dict) -> dict[str, str]:
    """The literal environment a Deployment gives its container; secrets become placeholders."""
    env: dict[str, str] = {}
    for e in dep["spec"]["template"]["spec"]["containers"][0].get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
            continue
        src = e.get("valueFrom") or {}
        if "fieldRef" in src:
            env[e["name"]] = f"{dep['metadata']['name']}-5d8f7c9b4-x2x7q"
        elif "secretKeyRef" in src:
            ref = src["secretKeyRef"]
            if e["name"] == "TELEMESH__CACHE_HEALTH__URL":
                env[e["name"]] = PLACEHOLDER_REDIS
            elif e["name"].endswith("__URL"):
                env[e["name"]] = PLACEHOLDER_DSN
            elif any(s in e["name"] for s in SECRET_VARS):
                env[e["name"]] = "placeholder-secret"
            else:  # e.g. a SASL user name kept in the Secret: not redacted by the binary
                env[e["name"]] = f"from-secret-{ref['name']}-{ref['key']}"
    return env


def check_config(binary: str, config: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    clean.update(env)
    return subprocess.run(
        [binary, "check-config", "--config", config],
        env=clean, capture_output=True, text=True, timeout=60, check=False,
    )


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        elif v is None:
            out.pop(k, None)  # helm: null deletes a default
        else:
            out[k] = v
    return out


def same(got: object, want: object) -> bool:
    if isinstance(want, str) and not isinstance(got, str) and got is not None:
        # an env var's literal value against the typed value the binary printed
        if isinstance(got, bool):
            return want.lower() == str(got).lower()
        try:
            return float(want) == float(got)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(got) == float(want)
    return got == want


def flatten(prefix: tuple, value: object, out: dict) -> None:
    """(path…) → value for every scalar or list of scalars under `value`."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(prefix + (k,), v, out)
    elif isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        for n, item in enumerate(value):
            flatten(prefix + (n,), item, out)
    elif value is not None:
        out[prefix] = value


def lookup(doc: object, path: tuple) -> object:
    for part in path:
        if isinstance(part, int) and isinstance(doc, list) and part < len(doc):
            doc = doc[part]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            return None
    return doc


def expected_from_values(values: dict) -> dict[tuple, object]:
    """What the chart promises to put in the config file for these values."""
    exp: dict[tuple, object] = {
        ("http", "addr"): f"0.0.0.0:{values['containerPort']}",
        ("log", "level"): values["log"]["level"],
        ("log", "format"): values["log"]["format"],
    }
    k = values["kafka"]
    if k["enabled"]:
        exp[("kafka", "brokers")] = k["bootstrapServers"]
        exp[("kafka", "security_protocol")] = k["securityProtocol"]
        for value_key, toml_key in (("topicPrefix", "topic_prefix"), ("encoding", "encoding"),
                                    ("groupId", "group_id"), ("clientId", "client_id"),
                                    ("messageTimeoutMs", "message_timeout_ms"),
                                    ("requestTimeoutMs", "request_timeout_ms")):
            if k.get(value_key) not in (None, ""):
                exp[("kafka", toml_key)] = k[value_key]
        if k["sasl"].get("mechanism"):
            exp[("kafka", "sasl_mechanism")] = k["sasl"]["mechanism"]
        if k["tls"].get("caSecret"):
            exp[("kafka", "ssl_ca_location")] = f"/etc/telemesh/kafka-ca/{k['tls']['caKey']}"
    j = values["journal"]
    for value_key, toml_key in (("maxConnections", "max_connections"),
                                ("acquireTimeoutMs", "acquire_timeout_ms"), ("timescale", "timescale")):
        if j.get(value_key) not in (None, ""):
            exp[("journal", toml_key)] = j[value_key]
    for name, svc in values["services"].items():
        if svc.get("enabled"):
            flatten((name.replace("-", "_"),), svc.get("config") or {}, exp)
            inputs = svc.get("inputs") or {}
            if inputs.get("runbooks") or inputs.get("runbooksConfigMap"):
                exp[(name.replace("-", "_"), "runbook_dir")] = "/etc/telemesh/runbooks"
            if inputs.get("roster") or inputs.get("rosterConfigMap"):
                exp[(name.replace("-", "_"), "roster_file")] = "/etc/telemesh/roster/roster.toml"
    flatten((), values.get("config") or {}, exp)
    return exp


def known_sections(binary: str) -> set[str]:
    """The top-level sections this telemesh binary has (its defaults, printed by check-config)."""
    with tempfile.TemporaryDirectory(prefix="telemesh-chart-") as tmp:
        empty = os.path.join(tmp, "empty.toml")
        open(empty, "w", encoding="utf-8").close()
        out = check_config(binary, empty, {})
    if out.returncode != 0:
        raise SystemExit(f"FAIL telemesh check-config with an empty file: exit {out.returncode}: {out.stderr.strip()}")
    return set(tomllib.loads(out.stdout))


def cmd_roundtrip(args: argparse.Namespace) -> int:
    docs = load(args.rendered)
    values: dict = {}
    for f in [os.path.join(args.chart, "values.yaml")] + args.values:
        with open(f, encoding="utf-8") as fh:
            values = deep_merge(values, yaml.safe_load(fh) or {})
    r = Report()
    cms = config_maps(docs)
    if len(cms) != 1:
        r.check("one config ConfigMap", [f"found {len(cms)}"])
        return 1
    label = args.label or os.path.basename(args.rendered)
    text = cms[0]["data"][CONFIG_KEY]
    known = known_sections(args.bin)
    used = set(tomllib.loads(text))
    for dep in deployments(docs):
        used |= {v.split("__")[1].lower() for v in container_env(dep) if v.startswith("TELEMESH__")}
    missing = sorted(used - known)
    if missing and args.skip_unknown_sections:
        print(f"skip check-config round trip ({label}): this telemesh has no "
              + ", ".join(f"[{m}]" for m in missing) + " section yet")
        return 0
    with tempfile.TemporaryDirectory(prefix="telemesh-chart-") as tmp:
        path = os.path.join(tmp, CONFIG_KEY)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

        def run(what: str, env: dict[str, str], expect: dict[tuple, object]) -> None:
            out = check_config(args.bin, path, env)
            problems = []
            if out.returncode != 0:
                problems.append(f"exit {out.returncode}: {out.stderr.strip() or out.stdout.strip()}")
            else:
                try:
                    effective = tomllib.loads(out.stdout)
                except tomllib.TOMLDecodeError as e:
                    effective = {}
                    problems.append(f"check-config printed no TOML: {e}")
                for path_, want in expect.items():
                    got = lookup(effective, path_)
                    if not same(got, want):
                        problems.append(f"{'.'.join(map(str, path_))} is {got!r}, want {want!r}")
                if "placeholder-secret" in out.stdout:
                    problems.append("a secret was printed unredacted")
            r.check(what, problems)

        from_values = expected_from_values(values)
        run(f"check-config accepts the rendered ConfigMap ({label}: {len(from_values)} values land on their keys)",
            {}, from_values)
        for dep in deployments(docs):
            env = container_env(dep)
            expect: dict[tuple, object] = {
                ("service", "instance"): env.get("TELEMESH__SERVICE__INSTANCE"),
                ("http", "addr"): from_values[("http", "addr")],
            }
            for var, value in env.items():
                parts = var.split("__")
                if len(parts) == 3 and parts[0] == "TELEMESH" and var != "TELEMESH__SERVICE__INSTANCE":
                    key = (parts[1].lower(), parts[2].lower())
                    if value == "placeholder-secret":
                        expect[key] = "<redacted>"
                    elif value in (PLACEHOLDER_DSN, PLACEHOLDER_REDIS):
                        expect[key] = value.replace("placeholder-secret", "***")
                    else:
                        expect[key] = value
            run(f"check-config accepts {name_of(dep)} ({label}: config file + its {len(env)} env vars)", env, expect)
    return 1 if r.failed else 0


def mount_for(container: dict, path: str) -> dict | None:
    """The volumeMount whose mountPath holds `path` (the longest match)."""
    best = None
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/")
        if (path == mp or path.startswith(mp + "/")) and (best is None or len(mp) > len(best["mountPath"])):
            best = m
    return best


def front_matter(text: str) -> dict[str, str]:
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            return out
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip().strip('"\'')
    return {}


def cmd_inputs(args: argparse.Namespace) -> int:
    docs = load(args.rendered)
    r = Report()
    cms = config_maps(docs)
    if len(cms) != 1:
        r.check("one config ConfigMap", [f"found {len(cms)}"])
        return 1
    config = tomllib.loads(cms[0]["data"][CONFIG_KEY])
    by_name = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for dep in deployments(docs):
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        problems = [f"volumeMount {m['name']} has no volume" for m in container.get("volumeMounts") or []
                    if m["name"] not in volumes]
        r.check(f"{name_of(dep)}: every volumeMount has its volume", problems)
        report = config.get("system_validation", {}).get("report_path", "")
        if component(dep) == "system-validation" and report:
            mount = mount_for(container, report)
            problems = ["no volumeMount holds it"] if mount is None else (
                [] if mount.get("readOnly") else [f"{mount['name']} is not mounted readOnly"])
            r.check(f"{name_of(dep)}: system_validation.report_path {report} is mounted read-only", problems)
        reports_dir = config.get("ci", {}).get("reports_dir", "")
        if component(dep) == "ci" and reports_dir:
            # read, then moved to processed/ or refused/: the volume must be writable
            mount = mount_for(container, reports_dir)
            problems = ["no volumeMount holds it"] if mount is None else (
                [f"{mount['name']} is mounted readOnly"] if mount.get("readOnly") else [])
            r.check(f"{name_of(dep)}: ci.reports_dir {reports_dir} is mounted writable", problems)
        if component(dep) != "incident-response":
            continue
        section = config.get("incident_response", {})
        for key, kind in (("runbook_dir", "dir"), ("roster_file", "file")):
            path = section.get(key, "")
            if not path:
                continue
            problems = []
            mount = mount_for(container, path)
            if mount is None:
                r.check(f"{name_of(dep)}: incident_response.{key} {path} is mounted", ["no volumeMount holds it"])
                continue
            if not mount.get("readOnly"):
                problems.append(f"{mount['name']} is not mounted readOnly")
            source = volumes.get(mount["name"], {}).get("configMap", {}).get("name")
            cm = by_name.get(source or "")
            if cm is None:
                problems.append(f"volume {mount['name']} is not a ConfigMap rendered by the chart ({source!r})")
            elif kind == "dir":
                files = {k: v for k, v in (cm.get("data") or {}).items() if k.endswith(".md")}
                if not files:
                    problems.append(f"ConfigMap {source} holds no *.md runbook")
                for name, text in files.items():
                    fm = front_matter(text)
                    missing = [k for k in ("id", "owner", "last_reviewed") if not fm.get(k)]
                    if missing:
                        problems.append(f"runbook {name} lacks {', '.join(missing)} in its front matter")
            else:
                rel = path[len(mount["mountPath"].rstrip("/")) + 1:]
                items = volumes[mount["name"]]["configMap"].get("items") or []
                key_name = next((i["key"] for i in items if i["path"] == rel), rel)
                text = (cm.get("data") or {}).get(key_name)
                if text is None:
                    problems.append(f"ConfigMap {source} has no key {key_name}")
                else:
                    try:
                        roster = tomllib.loads(text)
                        if not roster.get("rotation"):
                            problems.append("the roster has no [[rotation]]")
                    except tomllib.TOMLDecodeError as e:
                        problems.append(f"the roster is not TOML: {e}")
            r.check(f"{name_of(dep)}: incident_response.{key} {path} is mounted from its ConfigMap", problems)
    return 1 if r.failed else 0


def cmd_extract(args: argparse.Namespace) -> int:
    cms = config_maps(load(args.rendered))
    if len(cms) != 1:
        print(f"FAIL expected one config ConfigMap, found {len(cms)}")
        return 1
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(cms[0]["data"][CONFIG_KEY])
    return 0


def dockerignore_matcher(root: str):
    """`path -> excluded?` for ROOT/.dockerignore (Docker's rules: `*`, `?`, `**`, `!`)."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    with open(os.path.join(root, ".dockerignore"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pat = os.path.normpath(line.lstrip("!").strip("/"))
            rx = ""
            i = 0
            while i < len(pat):
                if pat.startswith("**/", i):
                    rx += "(?:.*/)?"
                    i += 3
                elif pat.startswith("**", i):
                    rx += ".*"
                    i += 2
                elif pat[i] == "*":
                    rx += "[^/]*"
                    i += 1
                elif pat[i] == "?":
                    rx += "[^/]"
                    i += 1
                else:
                    rx += re.escape(pat[i])
                    i += 1
            rules.append((negate, re.compile(rx + "$")))

    def excluded(rel: str) -> bool:
        parts = rel.split("/")
        out = False
        for negate, rx in rules:
            # a pattern matching a parent directory excludes everything below it
            if any(rx.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
                out = not negate
        return out

    return excluded


def cmd_docker_context(args: argparse.Namespace) -> int:
    excluded = dockerignore_matcher(args.root)
    count = 0
    for dirpath, dirnames, filenames in os.walk(args.root):
        rel_dir = os.path.relpath(dirpath, args.root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not excluded(rel_dir + d)]
        for name in filenames:
            rel = rel_dir + name
            if excluded(rel):
                continue
            dest = os.path.join(args.out, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(os.path.join(dirpath, name), dest, follow_symlinks=False)
            count += 1
    print(f"{count} files in the build context")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("policy")
    p.add_argument("rendered")
    p.add_argument("--expect-service", action="store_true", help="the aggregator must have a Service")
    p.set_defaults(fn=cmd_policy)
    p = sub.add_parser("roundtrip")
    p.add_argument("rendered")
    p.add_argument("--bin", required=True)
    p.add_argument("--chart", required=True, help="the chart directory (its values.yaml is the base)")
    p.add_argument("--values", action="append", default=[], help="a values file given to helm template")
    p.add_argument("--label", default="", help="what the rendered file is, for the report")
    p.add_argument("--skip-unknown-sections", action="store_true",
                   help="skip (not fail) when the config uses a section this binary lacks")
    p.set_defaults(fn=cmd_roundtrip)
    p = sub.add_parser("docker-context")
    p.add_argument("root")
    p.add_argument("out")
    p.set_defaults(fn=cmd_docker_context)
    p = sub.add_parser("inputs")
    p.add_argument("rendered")
    p.set_defaults(fn=cmd_inputs)
    p = sub.add_parser("extract-config")
    p.add_argument("rendered")
    p.add_argument("out")
    p.set_defaults(fn=cmd_extract)
    args = ap.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
