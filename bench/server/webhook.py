#!/usr/bin/env python3
"""Push webhook → first step started, for a remote repository with many commits (see
webhook.sh), and the server's mirror against a fresh `git clone` of the same remote.

A bare repository with `--history` commits (made with `git fast-import`) is served by
`git daemon` on loopback and registered with `mobius repo add git://…` (a mirror in the data
directory). For each of `--pushes` rounds, one commit is pushed to the remote (not timed), then
a signed GitHub `push` delivery is sent: the latency is from just before the delivery is sent to
the moment the workflow's only step runs (it appends `date +%s%N` to a file), so the mirror's
fetch, the trigger, the queue and the step's start are inside the figure. Rounds are one after
another, each once the previous run ended.
"""
import argparse
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ADMIN = "bench-admin-token-0123456789abcdef"
SECRET = "bench-webhook-secret"


def git(cwd, *args, quiet=True):
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@example.com", GIT_CONFIG_GLOBAL="/dev/null")
    out = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def history(bare, commits, workflow):
    """A bare repository whose `main` has `commits` commits, the first carrying the workflow."""
    git(os.path.dirname(bare), "init", "-q", "--bare", "-b", "main", bare)
    lines = []
    for i in range(commits):
        lines.append("commit refs/heads/main")
        lines.append(f"committer bench <b@example.com> {1_700_000_000 + i} +0000")
        message = f"commit {i}\n"
        lines.append(f"data {len(message)}")
        lines.append(message.rstrip("\n"))
        # Later commits on the same branch follow the previous one without a `from`.
        content = f"{i}\n"
        lines.append("M 100644 inline n.txt")
        lines.append(f"data {len(content)}")
        lines.append(content.rstrip("\n"))
        if i == 0:
            lines.append("M 100644 inline .github/workflows/ci.yml")
            lines.append(f"data {len(workflow.encode())}")
            lines.append(workflow.rstrip("\n"))
        lines.append("")
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, input=stream, text=True, check=True)


# A threading HTTP server that runs CGI programs under /cgi-bin/ (Python's own handler).
CGI_SERVER = """
import sys, warnings
warnings.simplefilter("ignore")
from http.server import CGIHTTPRequestHandler, ThreadingHTTPServer
class Quiet(CGIHTTPRequestHandler):
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Quiet).serve_forever()
"""


def du_kib(path):
    return int(subprocess.run(["du", "-sk", path], capture_output=True, text=True, check=True).stdout.split()[0])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base, path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mobius", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--history", type=int, default=10_000)
    p.add_argument("--pushes", type=int, default=50)
    p.add_argument("--payload", required=True, help="a GitHub push payload to start from")
    p.add_argument("--transport", choices=["git", "http"], default="git",
                   help="how the remote is served: `git daemon` (git://) or `git http-backend` (smart HTTP)")
    a = p.parse_args()
    work = os.path.abspath(a.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(f"{work}/forge/bench")
    starts, bare = f"{work}/starts.txt", f"{work}/forge/bench/app.git"
    # Steps run as another user (`nobody`) when the server runs as root: it must write here.
    os.chmod(work, 0o755)
    open(starts, "w").close()
    os.chmod(starts, 0o666)
    workflow = f"on: push\njobs:\n  first:\n    runs-on: x\n    steps:\n      - run: date +%s%N >> {starts}\n"
    t = time.time()
    history(bare, a.history, workflow)
    made = time.time() - t

    port = free_port()
    exec_path = git(work, "--exec-path")
    if a.transport == "git":
        daemon = subprocess.Popen([f"{exec_path}/git-daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
                                   f"--port={port}", f"--base-path={work}/forge", f"{work}/forge"],
                                  stderr=subprocess.DEVNULL)
        url = f"git://127.0.0.1:{port}/bench/app.git"
    else:
        # Smart HTTP as forges serve it: `git http-backend` as a CGI program behind Python's
        # threading HTTP server (what the tests' loopback forge does in Rust).
        cgi = f"{work}/www/cgi-bin"
        os.makedirs(cgi)
        with open(f"{cgi}/git", "w") as f:
            # Python's CGI handler runs programs as `nobody` when it is root: git must accept a
            # repository another user owns.
            f.write(f"#!/bin/sh\nexport GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'\n"
                    f"exec {exec_path}/git-http-backend\n")
        os.chmod(f"{cgi}/git", 0o755)
        server_env = dict(os.environ, GIT_PROJECT_ROOT=f"{work}/forge", GIT_HTTP_EXPORT_ALL="1")
        daemon = subprocess.Popen([sys.executable, "-c", CGI_SERVER, str(port)], cwd=f"{work}/www", env=server_env,
                                  stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/cgi-bin/git/bench/app.git"
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.02)

    # The peer: a fresh clone of the same remote.
    t = time.time()
    git(work, "clone", "-q", url, f"{work}/clone")
    clone_s, clone_kib = time.time() - t, du_kib(f"{work}/clone")

    data = f"{work}/data"
    t = time.time()
    subprocess.run([a.mobius, "--data-dir", data, "repo", "add", url, "--name", "bench/app"], check=True,
                   stdout=subprocess.DEVNULL, env=dict(os.environ, MOBIUS_LOG="warn"))
    mirror_s, mirror_kib = time.time() - t, du_kib(f"{data}/mirrors/bench/app.git")

    env = dict(os.environ, MOBIUS_ADMIN_TOKEN=ADMIN, MOBIUS_LOG="warn", MOBIUS_POLL_INTERVAL="1h",
               MOBIUS_GITHUB_WEBHOOK_SECRET=SECRET)
    server = subprocess.Popen([a.mobius, "--data-dir", data, "serve", "--listen", "127.0.0.1:0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = None
    said = []
    for line in server.stderr:
        said.append(line)
        if line.startswith("mobius listening on "):
            base = line.split()[-1].strip()
            break
    if base is None:
        daemon.terminate()
        raise SystemExit("the server did not start:\n" + "".join(said))
    time.sleep(0.5)  # the server's first poll (at start) is over
    payload = json.load(open(a.payload))
    payload["repository"]["full_name"] = "bench/app"
    payload["ref"] = "refs/heads/main"

    latencies = []
    for i in range(a.pushes):
        with open(f"{work}/clone/n.txt", "w") as f:
            f.write(f"push {i}\n")
        git(f"{work}/clone", "commit", "-qam", f"push {i}")
        # git daemon serves fetches only: the push goes to the bare repository itself.
        git(f"{work}/clone", "push", "-q", bare, "main")
        payload["after"] = git(f"{work}/clone", "rev-parse", "HEAD")
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(base + "/api/v1/webhooks/github", data=body, method="POST", headers={
            "Content-Type": "application/json", "X-GitHub-Event": "push",
            "X-GitHub-Delivery": f"bench-{i}", "X-Hub-Signature-256": signature})
        before = time.time_ns()
        urllib.request.urlopen(req).read()
        deadline = time.time() + 30
        while True:
            lines = open(starts).read().split()
            if len(lines) > i:
                break
            if time.time() > deadline:
                raise SystemExit(f"push {i}: no step started within 30 s")
            time.sleep(0.001)
        latencies.append((int(lines[i]) - before) / 1e6)
        deadline = time.time() + 60
        while any(r["state"] in ("queued", "running") for r in api(base, "/api/v1/runs?limit=3")):
            if time.time() > deadline:
                raise SystemExit("a run did not end")
            time.sleep(0.01)
    server.terminate()
    server.wait()
    daemon.terminate()

    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    print(json.dumps({
        "transport": a.transport,
        "history_commits": a.history,
        "history_made_s": round(made, 2),
        "pushes": len(latencies),
        "webhook_to_first_step_p50_ms": round(statistics.median(latencies), 1),
        "p90_ms": round(q[89], 1),
        "p99_ms": round(q[98], 1),
        "min_ms": round(latencies[0], 1),
        "max_ms": round(latencies[-1], 1),
        "mirror_s": round(mirror_s, 2),
        "mirror_kib": mirror_kib,
        "git_clone_s": round(clone_s, 2),
        "git_clone_kib": clone_kib,
    }, indent=2))


if __name__ == "__main__":
    main()
