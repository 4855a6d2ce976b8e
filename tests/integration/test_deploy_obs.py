"""test_deploy_obs.py - the Grafana dashboard and the Kubernetes manifests.

deploy/grafana/voicestack.json: importable (a current schemaVersion, a
Prometheus datasource variable every query uses, unique panel ids); every
metric a query reads exists in a live server's /metrics after real traffic
(a transcription, a speech request, a 429), with the labels the query
matches on; every expression parses (`promtool check rules` on a rules file
made of them, Grafana's variables given values).

deploy/kubernetes/: yamllint-clean; the Deployment's probes, ports, image,
HOST and resources; the memory request and limit against the worker RSS
docs/PERFORMANCE.md measured and MEMORY_THRESHOLD_PERCENT; the Service's
target ports; the HorizontalPodAutoscaler's target and metric, which the
Prometheus adapter's rules define from metrics /metrics has (their queries
parse too); the container's settings start a real server whose probes
answer 200. Not run here: a cluster (no kubectl apply, no adapter, no
Grafana import) - Debian's kubernetes-client asks an API server even for a
client-side dry run."""

import json
import os
import re
import subprocess

import harness as h

SANITIZER_PASS = False

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "voicestack.json")
K8S = os.path.join(ROOT, "deploy", "kubernetes")
MANIFEST = os.path.join(K8S, "voicestack.yaml")
ADAPTER = os.path.join(K8S, "prometheus-adapter-rules.yaml")
PERFORMANCE = os.path.join(ROOT, "docs", "PERFORMANCE.md")
PROMTOOL = "/usr/bin/promtool"
YAMLLINT = "/usr/bin/yamllint"
CARD = os.path.join(h.CARDS, "001.wav")
# labels Prometheus adds at scrape time (job, instance) or its Kubernetes
# discovery relabels in (namespace, pod); le is the bucket label
SCRAPE_LABELS = {"job", "instance", "namespace", "pod", "le"}
# the spawner beside its workers: RSS 28.9 MB (docs/ARCHITECTURE.md,
# "Spawner memory and lifetime"); not a row of docs/PERFORMANCE.md
SPAWNER_MB = 28.9

shared = h.SharedServer(env={"ASR_MAX_CONCURRENT_REQUESTS": "1"}, name="deploy-obs")


def teardown_module():
    shared.stop()


def _yaml():
    try:
        import yaml
    except ImportError:
        raise h.Skip("python3-yaml missing (Debian package python3-yaml)")
    return yaml


def _scrape_after_traffic():
    """/metrics text of the shared server after a 200 of each service and a 429."""
    s = shared()
    r429 = h.refused_while_slot_held(s, CARD)
    assert r429.status == 429, r429
    r = h.transcribe(s.asr_port, CARD, timeout=120)
    assert r.status == 200, r
    r = h.speak(s.tts_port, "Hello there.", response_format="wav", timeout=120)
    assert r.status == 200, r
    h.wait_for(lambda: "voicestack_tts_time_to_first_byte_seconds_bucket" in
               s.get("asr", "/metrics").body.decode(), "the speech request counted", 10)
    return s.get("asr", "/metrics").body.decode()


def _series(text):
    """{sample name: set of label names} of a /metrics text."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s", line)
        if m and not line.startswith("#"):
            labels = set(re.findall(r'(\w+)="', m.group(2) or ""))
            out.setdefault(m.group(1), set()).update(labels)
    return out


def _dashboard_exprs(d):
    return [t["expr"] for p in d["panels"] for t in p.get("targets", []) if t.get("expr")]


def _grafana_to_promql(expr):
    """Grafana's variables given values promtool accepts."""
    return (expr.replace("$__rate_interval", "5m").replace('"$job"', '".*"')
            .replace('"$instance"', '".*"').replace('"$outcome"', '".*"'))


def _adapter_to_promql(q):
    """The adapter's templates given what it substitutes for one pod."""
    return q.replace("<<.GroupBy>>", "pod").replace(
        "<<.LabelMatchers>>", 'namespace="default",pod="voicestack-0"')


def _selectors(expr):
    """(metric name, {matched label names}) of every selector in expr; every
    metric must be written with braces (the dashboard's style) so none hides."""
    sels = [(m.group(1), set(re.findall(r'(\w+)\s*[=!]~?\s*"', m.group(2))))
            for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr)]
    bare = [n for n in re.findall(r"\b((?:voicestack|process)_[a-zA-Z0-9_:]*)\b(?!\{)", expr)]
    assert not bare, "metric without a selector in %r: %s" % (expr, bare)
    return sels


def _promtool_rules(exprs, name):
    path = h.tmppath(name + ".rules.yml")
    rules = [{"record": "voicestack:check_%d" % i, "expr": e} for i, e in enumerate(exprs)]
    with open(path, "w") as f:
        json.dump({"groups": [{"name": name, "rules": rules}]}, f)  # JSON is YAML
    p = subprocess.run([PROMTOOL, "check", "rules", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, "promtool check rules: %s\n%s" % (
        p.stdout.decode(), "\n".join(exprs))


def test_dashboard_is_importable():
    with open(DASHBOARD) as f:
        d = json.load(f)
    assert d["schemaVersion"] >= 36, d["schemaVersion"]  # Grafana 9.x and later
    assert d["uid"] and d["title"], (d["uid"], d["title"])
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables.get("datasource")
    assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", ds
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), ids
    for p in d["panels"]:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]), p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", (p["title"], t)
            for var in re.findall(r"\$(\w+)", t["expr"]):
                assert var == "__rate_interval" or var in variables, (p["title"], var)
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for what in ("request rate", "latency", "refusals", "queue", "slot", "real-time factor",
                 "workers", "first byte"):
        assert what in titles, "no panel for %s: %s" % (what, titles)


def test_dashboard_queries_exist_in_metrics_and_parse():
    with open(DASHBOARD) as f:
        exprs = _dashboard_exprs(json.load(f))
    series = _series(_scrape_after_traffic())
    for e in exprs:
        for name, labels in _selectors(e):
            assert name in series, "dashboard queries %s, not in /metrics: %s" % (name, e)
            missing = labels - SCRAPE_LABELS - series[name]
            assert not missing, "%s has no label %s (it has %s)" % (name, missing,
                                                                   series[name])
    _promtool_rules([_grafana_to_promql(e) for e in exprs], "dashboard")


def test_kubernetes_yamllint():
    if not os.path.exists(YAMLLINT):
        raise h.Skip("yamllint missing (Debian package yamllint)")
    p = subprocess.run([YAMLLINT, "-s", "-d", "{extends: default, rules: {line-length: "
                        "{max: 100}, document-start: disable}}", K8S],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode()


def _load_manifests():
    yaml = _yaml()
    with open(MANIFEST) as f:
        docs = {d["kind"]: d for d in yaml.safe_load_all(f) if d}
    with open(ADAPTER) as f:
        adapter = yaml.safe_load(f)
    return docs, adapter


def _mb(quantity):
    m = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert m, quantity
    return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1) * 1.048576  # MB


def _measured():
    """(front, asr steady, asr peak, tts steady, tts peak) MB from PERFORMANCE.md."""
    with open(PERFORMANCE) as f:
        text = f.read()

    def row(title):
        m = re.search(r"^\| \d+ \| %s[^|]*\| ([\d.]+) MB[^|]*\| ([^|]*)\|" % re.escape(title),
                      text, re.M)
        assert m, "no row %r in docs/PERFORMANCE.md" % title
        other = re.search(r"([\d.]+) MB", m.group(2))
        return float(m.group(1)), float(other.group(1)) if other else None
    asr, asr_peak = row("RSS of one ASR worker")
    tts, tts_peak = row("RSS of one TTS worker")
    front, _ = row("soak: front RSS")
    return front, asr, asr_peak, tts, tts_peak


def test_kubernetes_manifests_fields_and_memory():
    docs, adapter = _load_manifests()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(docs), sorted(docs)
    dep = docs["Deployment"]
    assert dep["apiVersion"] == "apps/v1"
    spec = dep["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (c,) = spec["template"]["spec"]["containers"]
    assert c["image"] == "voicestack:0.1.0", c["image"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["HOST"] == "0.0.0.0", env
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"asr": int(env["ASR_PORT"]), "tts": int(env["TTS_PORT"])}, (ports, env)
    live, ready = c["livenessProbe"]["httpGet"], c["readinessProbe"]["httpGet"]
    assert live["path"] == "/health" and ready["path"] == "/health/ready", (live, ready)
    assert live["port"] in ports and ready["port"] in ports, (live, ready)
    # scrape one port of the one process: both ports serve the same registry
    ann = spec["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/port"] == str(ports["asr"]), ann
    # memory: the request holds the steady full load, the guard's threshold
    # of the limit (cgroup memory.max) stays above the full load at its peak
    front, asr, asr_peak, tts, tts_peak = _measured()
    na, nt = int(env["ASR_MAX_CONCURRENT_REQUESTS"]), int(env["TTS_MAX_CONCURRENT_REQUESTS"])
    steady = front + SPAWNER_MB + na * asr + nt * tts
    peak = front + SPAWNER_MB + na * max(asr, asr_peak) + nt * max(tts, tts_peak)
    req, lim = c["resources"]["requests"], c["resources"]["limits"]
    assert _mb(req["memory"]) >= steady, (req, steady)
    guard = _mb(lim["memory"]) * int(env["MEMORY_THRESHOLD_PERCENT"]) / 100
    assert guard >= peak, "the guard (%.0f MB) would refuse a full load (%.0f MB)" % (
        guard, peak)
    assert _mb(lim["memory"]) > guard, lim
    # the Service reaches the container's ports by name
    svc = docs["Service"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == set(ports)
    # the autoscaler: this Deployment, a metric the adapter's rules define
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2", hpa["apiVersion"]
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", dep["metadata"]["name"]), ref
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    rules = {r["name"]["as"]: r for r in adapter["rules"]}
    for m in hpa["spec"]["metrics"]:
        assert m["type"] == "Pods" and m["pods"]["metric"]["name"] in rules, (m, sorted(rules))


def test_adapter_rules_read_existing_metrics_and_parse():
    _, adapter = _load_manifests()
    series = _series(_scrape_after_traffic())
    queries = []
    for r in adapter["rules"]:
        q = _adapter_to_promql(r["metricsQuery"])
        queries.append(q)
        names = {n for n, _ in _selectors(q)} | {re.match(r"\w+", r["seriesQuery"]).group(0)}
        for n in names:
            assert n in series, "adapter rule reads %s, not in /metrics" % n
        assert set(r["resources"]["overrides"]) == {"namespace", "pod"}, r["resources"]
    _promtool_rules(queries, "adapter")


def test_container_settings_start_a_server_whose_probes_answer():
    """The Deployment's env and args as written (HOST and ports made local):
    every setting is one the server knows, and the probes get 200."""
    docs, _ = _load_manifests()
    (c,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        known = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", f.read(), re.M))
    unknown = set(env) - known - {"TMPDIR"}
    assert not unknown, "settings the server does not know: %s" % sorted(unknown)
    env.update(HOST=h.HOST, ASR_PORT="0", TTS_PORT="0", TMPDIR=h.tmpdir())
    service = c["args"][c["args"].index("--service") + 1]
    s = h.Server(env=env, service=service, name="k8s-env").start()
    try:
        for probe in ("livenessProbe", "readinessProbe"):
            g = c[probe]["httpGet"]
            r = s.get(g["port"], g["path"])
            assert r.status == 200, (probe, r.status, r.body[:200])
    finally:
        s.stop()
