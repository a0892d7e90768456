#!/usr/bin/env python3
"""Commit → first step started under `mobius serve`, and server RSS (see run.sh).

A repository is registered with `mobius repo add` (which installs the post-commit hook). Its
workflow's only step appends `date +%s%N` to a file: the moment the step's process runs. For
each commit, the latency is that moment minus the moment just before `git commit` was
started (so git's own work and the hook's start-up are inside the figure). Commits are made
one after another, each once the previous run's step has started and its run ended.

Then the 200-job DAG (bench/dag/generate.py) is committed and the server's VmRSS is sampled
every 20 ms until the run ends; the idle figure is sampled before any run.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

ADMIN = "bench-admin-token-0123456789abcdef"


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@example.com", GIT_CONFIG_GLOBAL="/dev/null")
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def api(base, path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def wait_idle(base, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = api(base, "/api/v1/runs?limit=5")
        if runs and all(r["state"] not in ("queued", "running") for r in runs):
            return runs[0]
        time.sleep(0.01)
    raise SystemExit("a run did not end in time")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mobius", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--commits", type=int, default=50)
    p.add_argument("--dag-generator", required=True)
    a = p.parse_args()
    work = os.path.abspath(a.work)
    shutil.rmtree(work, ignore_errors=True)
    repo, data, starts = f"{work}/repo", f"{work}/data", f"{work}/starts.txt"
    os.makedirs(f"{repo}/.github/workflows")
    with open(f"{repo}/.github/workflows/ci.yml", "w") as f:
        f.write("on: push\njobs:\n  first:\n    runs-on: x\n    steps:\n"
                f"      - run: date +%s%N >> {starts}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")

    env = dict(os.environ, MOBIUS_ADMIN_TOKEN=ADMIN, MOBIUS_LOG="warn", MOBIUS_POLL_INTERVAL="1h")
    server = subprocess.Popen([a.mobius, "--data-dir", data, "serve", "--listen", "127.0.0.1:0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = None
    for line in server.stderr:
        if line.startswith("mobius listening on "):
            base = line.split()[-1].strip()
            break
    subprocess.run([a.mobius, "--data-dir", data, "repo", "add", repo, "--name", "bench/app",
                    "--hook-server", base], check=True, stdout=subprocess.DEVNULL)
    time.sleep(1)
    idle = rss_kib(server.pid)

    latencies = []
    for i in range(a.commits):
        with open(f"{repo}/n.txt", "w") as f:
            f.write(str(i))
        git(repo, "add", "-A")
        before = time.time_ns()
        git(repo, "commit", "-qm", f"commit {i}")
        deadline = time.time() + 30
        while True:
            lines = open(starts).read().split() if os.path.exists(starts) else []
            if len(lines) > i:
                break
            if time.time() > deadline:
                raise SystemExit(f"commit {i}: no step started within 30 s")
            time.sleep(0.001)
        latencies.append((int(lines[i]) - before) / 1e6)
        wait_idle(base)
    after_commits = rss_kib(server.pid)

    # The DAG under the server.
    subprocess.run([sys.executable, a.dag_generator, repo], check=True, stdout=subprocess.DEVNULL)
    os.remove(f"{repo}/.github/workflows/ci.yml")
    git(repo, "add", "-A")
    started = time.time()
    git(repo, "commit", "-qm", "dag")
    peak = 0
    run = None
    while time.time() - started < 600:
        peak = max(peak, rss_kib(server.pid))
        runs = api(base, "/api/v1/runs?limit=1")
        if runs and runs[0]["workflow_name"] == "dag" and runs[0]["state"] not in ("queued", "running"):
            run = runs[0]
            break
        time.sleep(0.02)
    dag_seconds = time.time() - started
    detail = api(base, f"/api/v1/runs/{run['id']}") if run else {}
    server.terminate()
    server.wait()

    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    result = {
        "commits": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p90_ms": round(q[89], 1),
        "p99_ms": round(q[98], 1),
        "min_ms": round(latencies[0], 1),
        "max_ms": round(latencies[-1], 1),
        "rss_idle_mib": round(idle / 1024, 1),
        "rss_after_commits_mib": round(after_commits / 1024, 1),
        "rss_peak_dag_mib": round(peak / 1024, 1),
        "dag_state": run["state"] if run else "did not end",
        "dag_jobs": len(detail.get("jobs", [])),
        "dag_wall_s": round(dag_seconds, 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
