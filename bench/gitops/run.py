#!/usr/bin/env python3
"""GitOps reconcile latency (issue 16): from a commit to a deploy repository to the rollout it
asks for starting, through the repository's post-commit hook (what a push webhook does), the
server's poll, the reconciler's wake and the deployer. Target: p50 <= 1 s.

Starts `mobius serve` (the release build) on a fresh data directory, builds N artifacts with a
real pipeline, follows a deploy repository, then commits each new digest into
environments/production.yaml and measures commit start -> the rollout's `created_at`.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MOBIUS_BIN", os.path.join(ROOT, "target", "release", "mobius"))
TOKEN = "bench-admin-token-of-at-least-32-chars"
SAMPLES = int(os.environ.get("SAMPLES", "12"))

WORKFLOW = """name: Build
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: mkdir release && sed "s/{version}/$(cat version.txt)/" mobius.template.yaml > release/mobius.yaml
      - uses: actions/upload-artifact@v4
        with:
          name: shop
          path: release
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def git(repo, *args):
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="b@example.com",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="b@example.com")
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo, files, message):
    for name, text in files.items():
        path = os.path.join(repo, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def api(base, path, body=None, method=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method or ("POST" if data else "GET"))
    request.add_header("Authorization", "Bearer " + TOKEN)
    if data:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def wait(what, check, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {what}")


def stamp(text):
    """Seconds since the epoch of an RFC 3339 UTC time with up to nanoseconds."""
    head, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + (float("0." + fraction) if fraction else 0.0)


def stop_instances(work):
    """The service's instances outlive `mobius serve` (it re-adopts them): stop the ones whose
    working directory is in the bench's scratch directory."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/cwd").startswith(work):
                    os.kill(int(pid), 15)
            except OSError:
                pass


def main():
    work = tempfile.mkdtemp(prefix="mobius-gitops-bench.")
    server = None
    try:
        data, port, listen = os.path.join(work, "data"), free_port(), free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, MOBIUS_ADMIN_TOKEN=TOKEN, MOBIUS_DATA_DIR=data, MOBIUS_LOG="warn")
        server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
        wait("the server", lambda: subprocess.run(["curl", "-sf", base + "/healthz"], capture_output=True).returncode == 0)

        template = (
            "service: shop\nrun:\n  command: mobius\n  args: [sample-app]\n  env:\n    SAMPLE_VERSION: \"{version}\"\n"
            "  instances: 1\n  readiness_timeout: 3s\n  shutdown_grace: 1s\nenvironments:\n  - name: production\n"
            f"    listen: 127.0.0.1:{listen}\n    strategy: rolling\n"
        )
        shop, deploy = os.path.join(work, "shop"), os.path.join(work, "deploy")
        # `repo add` of a clone on this machine works on the data directory (as the tests do),
        # installing hooks that call the server.
        cli_env = dict(env, PATH=os.path.dirname(BIN) + ":" + os.environ["PATH"])
        for repo, name, files in [
            (shop, "acme/shop", {".github/workflows/build.yml": WORKFLOW, "mobius.template.yaml": template, "version.txt": "v0"}),
            (deploy, "acme/deploy", {"README.md": "deploy\n"}),
        ]:
            os.makedirs(repo)
            git(repo, "init", "-q", "-b", "main")
            commit(repo, files, "Initial commit")
            subprocess.run([BIN, "repo", "add", repo, "--name", name, "--hook-server", base], env=cli_env, check=True,
                           capture_output=True)

        digests = []
        for i in range(1, SAMPLES + 2):
            sha = commit(shop, {"version.txt": f"v{i}"}, f"v{i}")

            def packaged(sha=sha):
                events = api(base, "/api/v1/events?type=dev.cdevents.artifact.packaged.0.3.0&limit=100")
                for e in events:
                    raw = json.loads(e["raw"])
                    if raw["subject"]["content"]["change"]["id"] == sha:
                        return raw["subject"]["id"].rsplit("@", 1)[1].replace("%3A", ":")
                return None

            digests.append(wait(f"artifact v{i}", packaged))
        print(f"built {len(digests)} artifacts", file=sys.stderr)

        def declare(digest):
            return {"environments/production.yaml": f"services:\n  shop:\n    artifact: {digest}\n"}

        commit(deploy, declare(digests[0]), "production: v1")
        api(base, "/api/v1/gitops", {"repository": "acme/deploy"})

        def latest():
            try:
                return api(base, "/api/v1/rollouts/shop/production")
            except urllib.error.HTTPError:
                return None

        wait("v1 deployed", lambda: (r := latest()) and r["phase"] == "succeeded")
        samples = []
        for i, digest in enumerate(digests[1:], start=2):
            before = latest()["id"]
            started = time.time()
            commit(deploy, declare(digest), f"production: v{i}")
            rollout = wait(f"the rollout of v{i}", lambda: (r := latest()) and r["id"] != before and r)
            samples.append(stamp(rollout["created_at"]) - started)
            wait(f"v{i} deployed", lambda: (r := latest()) and r["phase"] == "succeeded")
        samples.sort()
        p50 = statistics.median(samples)
        p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        print(json.dumps({"samples": len(samples), "p50_s": round(p50, 3), "p90_s": round(p90, 3),
                          "min_s": round(samples[0], 3), "max_s": round(samples[-1], 3),
                          "all_s": [round(s, 3) for s in samples]}))
    finally:
        if server:
            server.terminate()
            server.wait(timeout=20)
        stop_instances(work)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
