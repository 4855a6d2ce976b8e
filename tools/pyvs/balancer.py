"""balancer.py - the shipped load balancer configs, run on loopback.

DESIGN
Owns: turning deploy/nginx-cluster.conf and deploy/haproxy-voicestack.cfg
into configs that run here, and the main nginx config a site is included
into. Shared by tests/integration/test_balancers.py, test_nginx.py and bench
section 13, so that what is tested and what is measured is the file a user
installs.

render() substitutes only:
- the listen address: nginx `listen 80;`, HAProxy `bind :80` -> HOST:port;
- the HOST:PORT of each server line: 10.0.0.1N:5001 (ASR) and :5002 (TTS)
  -> the N-th instance's loopback ports (N = 1..3). Lines of instances
  beyond those given are dropped (the bench runs 1, 2 and 3 instances), and
  then nginx's proxy_next_upstream_tries becomes the number of instances, as
  the file tells a user to set it (more tries than instances ends in nginx's
  502 "no live upstreams" instead of the instances' own 429).
Every substitution must match at least once, so a file that loses one of
these spellings fails loudly instead of being tested half-rendered.
"""

import os
import pwd
import re

from . import Failed
from .http import HOST

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX_CLUSTER = os.path.join(ROOT, "deploy", "nginx-cluster.conf")
HAPROXY = os.path.join(ROOT, "deploy", "haproxy-voicestack.cfg")
SHIPPED_INSTANCES = 3
SERVER_RX = re.compile(r"10\.0\.0\.1(\d):(5001|5002)\b")
# a service an instance does not run (ASR-only servers) points at the discard port
NO_PORT = 9


def render(path, listen_port, instances):
    """The file at path with the listen address and the server lines'
    HOST:PORT replaced. instances: [{"asr": port, "tts": port}] (a missing
    service -> the discard port)."""
    with open(path) as f:
        text = f.read()
    if not 1 <= len(instances) <= SHIPPED_INSTANCES:
        raise Failed("%d instances: the shipped files list %d" % (len(instances),
                                                                 SHIPPED_INSTANCES))
    text, n = re.subn(r"^(\s*)(listen 80;|bind :80)$",
                      lambda m: m.group(1) + ("listen %s:%d;" if m.group(2).startswith("listen")
                                              else "bind %s:%d") % (HOST, listen_port),
                      text, flags=re.M)
    if n == 0:
        raise Failed("%s has no `listen 80;` / `bind :80` to substitute" % path)
    out, seen = [], set()
    for line in text.splitlines(True):
        m = SERVER_RX.search(line)
        if m and line.lstrip().startswith("server "):
            i, svc = int(m.group(1)) - 1, "asr" if m.group(2) == "5001" else "tts"
            seen.add((i, svc))
            if i >= len(instances):
                continue
            line = line[:m.start()] + "%s:%d" % (HOST, instances[i].get(svc) or NO_PORT) + \
                line[m.end():]
        out.append(line)
    want = {(i, s) for i in range(SHIPPED_INSTANCES) for s in ("asr", "tts")}
    if seen != want:
        raise Failed("%s: server lines for (instance, service) %s missing" % (
            path, sorted(want - seen)))
    text = "".join(out)
    if len(instances) < SHIPPED_INSTANCES and "proxy_next_upstream_tries" in text:
        text, n = re.subn(r"proxy_next_upstream_tries %d;" % SHIPPED_INSTANCES,
                          "proxy_next_upstream_tries %d;" % len(instances), text)
        if n == 0:
            raise Failed("%s: proxy_next_upstream_tries is not %d" % (path, SHIPPED_INSTANCES))
    return text


def nginx_main(d, site):
    """A main nginx.conf that includes site, with pid, logs and temp paths in
    d, in the foreground, one worker, as the current user."""
    # as root, nginx's workers would switch to `nobody`, who cannot read d
    user = "user %s;\n" % pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else ""
    return (user + "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n"
            "error_log {d}/error.log info;\nevents {{ worker_connections 1024; }}\n"
            "http {{\n  access_log {d}/access.log;\n"
            "  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n"
            "  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n"
            "  scgi_temp_path {d}/scgi;\n  include {site};\n}}\n").format(d=d, site=site)
