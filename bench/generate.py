#!/usr/bin/env python3
"""Seeded generator of a delivery history for the Mobius benchmark.

Writes NDJSON records accepted by `mobius events import`, in global time order:

* CDEvents v0.5.1: pipelinerun queued/started/finished, artifact.packaged (maps an artifact
  purl to a commit and repository), service.deployed (staging, then production),
  service.rolledback, incident.detected / incident.resolved.
* Recorded GitHub webhook deliveries (`{"webhook":"github","event":...,"payload":...}`):
  push (CDEvents has no commit-level push event), pull_request closed+merged (squash merges of
  feature branches), deployment_status (failed deployment attempts, and every deployment of
  a few services that deploy through GitHub Deployments), workflow_run (the CI of a few
  services that use GitHub Actions), issues labelled `Incident` with `root cause: <sha>`.

The history ends at a fixed instant (2026-11-01T00:00:00Z by default) so that results do not
depend on the day it is run. The same seed and options give byte-identical output.

With `--truth FILE` it also writes the production DORA figures every service should get over
the benchmark window, computed from the generator's own timeline with the definitions of
issue 2 (a cross-check of the binary's numbers, not an input to it).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

MS = 1
SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR

# Records per unit of work (one push to main, or one merged feature branch), on average at
# the default mix. Used to turn --target-events into an amount of work; calibrated on runs
# of this generator (the summary on stderr prints the actual count).
RECORDS_PER_ITEM = 8.38

DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def iso_s(ms: int) -> str:
    """Second precision, as GitHub writes its timestamps."""
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_day(s: str) -> int:
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


WORDS = (
    "cache retry timeout parser config metrics handler router client pool schema index "
    "login billing search export upload queue worker scheduler report auth session token "
    "invoice webhook feed profile settings audit").split()
KINDS = ["feat", "fix", "refactor", "chore", "perf", "test", "docs"]


@dataclass
class Deploy:
    """A production deployment in the generator's own timeline (for the truth file)."""
    at: int
    artifact: str | None
    revision: str
    success: bool
    shipped: list = field(default_factory=list)  # (sha, commit_time) first shipped here
    rolled_back: bool = False


@dataclass
class Incident:
    detected: int
    resolved: int | None
    artifact: str | None  # explicit link by artifact (CDEvents)
    root_cause: str | None  # explicit link by commit (GitHub issue)


class Service:
    def __init__(self, seed: int, index: int, start: int, end: int, items: int, org: str):
        self.rng = random.Random(f"mobius-bench:{seed}:{index}")
        self.index = index
        self.name = f"svc-{index:02d}"
        self.repo = f"{org}/{self.name}"
        self.start, self.end = start, end
        self.items = items
        # A mix of toolchains, as a real organisation has.
        self.ci = "github" if index % 5 == 0 else "cdevents"
        self.deployer = "github" if index % 10 == 3 else "cdevents"
        self.records: list[tuple[int, int, str]] = []
        self.seq = 0
        self.counter = 0
        self.head: str | None = None
        self.pending: list[tuple[str, int]] = []  # main commits not yet in production
        self.feature_commits: dict[str, list[tuple[str, int]]] = {}  # squash sha -> branch commits
        self.prod: list[Deploy] = []
        self.staging_count = 0
        self.incidents: list[Incident] = []
        self.counts: dict[str, int] = {}
        self.last_prod = start
        self.repo_id = 100000 + index
        self.ids = index * 10_000_000

    # -- helpers -------------------------------------------------------------------------
    def emit(self, at: int, kind: str, record: dict) -> None:
        if at >= self.end:
            return
        self.seq += 1
        self.records.append((at, self.seq, DUMPS(record)))
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def next_id(self) -> int:
        self.ids += 1
        return self.ids

    def sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def message(self) -> str:
        r = self.rng
        return f"{r.choice(KINDS)}: {r.choice(WORDS)} {r.choice(WORDS)}\n\n{r.choice(WORDS)} {r.choice(WORDS)} {r.choice(WORDS)}."

    def purl(self, sha: str) -> str:
        return f"pkg:generic/{self.name}@{sha}"

    def repository(self) -> dict:
        return {
            "id": self.repo_id,
            "name": self.name,
            "full_name": self.repo,
            "private": True,
            "html_url": f"https://github.com/{self.repo}",
            "default_branch": "main",
        }

    def cdevent(self, at: int, source: str, ty: str, subject_id: str, content: dict) -> dict:
        return {
            "context": {
                "specversion": "0.5.1",
                "id": self.uuid(),
                "source": source,
                "type": ty,
                "timestamp": iso(at),
            },
            "subject": {"id": subject_id, "content": content},
        }

    # -- the work ------------------------------------------------------------------------
    def work_times(self) -> list[int]:
        r = self.rng
        lo, hi = self.start + HOUR, self.end - HOUR
        times = []
        while len(times) < self.items:
            t = r.randrange(lo, hi)
            dt = datetime.fromtimestamp(t // 1000, tz=timezone.utc)
            # Fewer changes at weekends and at night.
            if dt.weekday() >= 5 and r.random() < 0.75:
                continue
            if not 7 <= dt.hour < 20 and r.random() < 0.6:
                continue
            times.append(t)
        times.sort()
        return times

    def commits(self, push_at: int, n: int) -> list[tuple[str, int, str]]:
        r = self.rng
        span = r.choice([20 * MIN, 2 * HOUR, 6 * HOUR, 30 * HOUR, 3 * DAY]) if r.random() < 0.9 else 9 * DAY
        last = push_at - r.randrange(10 * SEC, 10 * MIN)
        times = sorted(last - r.randrange(0, span) for _ in range(n - 1)) + [last]
        # GitHub writes commit times to the second.
        return [(self.sha(), t // SEC * SEC, self.message()) for t in times]

    def push(self, at: int, branch: str, commits: list[tuple[str, int, str]], before: str | None) -> str:
        entries = [
            {
                "id": sha,
                "tree_id": f"{self.rng.getrandbits(160):040x}",
                "distinct": True,
                "message": msg,
                "timestamp": iso_s(t),
                "url": f"https://github.com/{self.repo}/commit/{sha}",
                "author": {"name": "Dev", "email": "dev@example.com", "username": "dev"},
                "committer": {"name": "Dev", "email": "dev@example.com", "username": "dev"},
                "added": [], "removed": [], "modified": [f"src/{self.rng.choice(WORDS)}.rs"],
            }
            for sha, t, msg in commits
        ]
        after = commits[-1][0]
        payload = {
            "ref": f"refs/heads/{branch}",
            "before": before or "0" * 40,
            "after": after,
            "created": before is None,
            "deleted": False,
            "forced": False,
            "compare": f"https://github.com/{self.repo}/compare/{(before or '0' * 40)[:12]}...{after[:12]}",
            "commits": entries,
            "head_commit": entries[-1],
            "repository": self.repository(),
            "pusher": {"name": "dev", "email": "dev@example.com"},
        }
        self.emit(at, "github push", {"webhook": "github", "event": "push", "payload": payload})
        return after

    def pipeline(self, at: int, sha: str, branch: str) -> tuple[int, bool]:
        """A CI run for a pushed head; returns (finish time, success)."""
        r = self.rng
        queued = at + r.randrange(2 * SEC, 30 * SEC)
        started = queued + r.randrange(5 * SEC, 120 * SEC)
        finished = started + r.randrange(3 * MIN, 15 * MIN)
        ok = r.random() >= 0.07
        n = self.next_id()
        if self.ci == "cdevents":
            source = f"/ci/{self.repo}"
            run = f"{self.name}-run-{n}"
            uri = f"https://ci.example.com/{self.repo}/runs/{n}"
            base = {"pipelineName": "build-and-test", "uri": uri}
            self.emit(queued, "pipelinerun.queued", self.cdevent(queued, source, "dev.cdevents.pipelinerun.queued.0.3.0", run, dict(base)))
            self.emit(started, "pipelinerun.started", self.cdevent(started, source, "dev.cdevents.pipelinerun.started.0.3.0", run, dict(base)))
            done = dict(base, outcome="success" if ok else "failure")
            if not ok:
                done["errors"] = "test suite failed"
            self.emit(finished, "pipelinerun.finished", self.cdevent(finished, source, "dev.cdevents.pipelinerun.finished.0.3.0", run, done))
        else:
            for action, when in (("requested", queued), ("in_progress", started), ("completed", finished)):
                run = {
                    "id": n,
                    "name": "CI",
                    "node_id": f"WFR_{n}",
                    "head_branch": branch,
                    "head_sha": sha,
                    "path": ".github/workflows/ci.yml",
                    "display_title": f"CI on {branch}",
                    "run_number": n % 100000,
                    "event": "push",
                    "status": {"requested": "queued", "in_progress": "in_progress", "completed": "completed"}[action],
                    "conclusion": ("success" if ok else "failure") if action == "completed" else None,
                    "workflow_id": 1000 + self.index,
                    "html_url": f"https://github.com/{self.repo}/actions/runs/{n}",
                    "created_at": iso_s(queued),
                    "updated_at": iso_s(when),
                    "run_attempt": 1,
                    "run_started_at": iso_s(started),
                }
                self.emit(when, "github workflow_run", {"webhook": "github", "event": "workflow_run",
                                                         "payload": {"action": action, "workflow_run": run, "repository": self.repository()}})
        return finished, ok

    def deployment_status(self, at: int, started: int, sha: str, environment: str, state: str) -> None:
        dep_id, status_id = self.next_id(), self.next_id()
        payload = {
            "action": "created",
            "deployment_status": {
                "id": status_id, "state": state, "description": "", "environment": environment,
                "target_url": f"https://deploy.example.com/{self.repo}/{dep_id}",
                "created_at": iso_s(at), "updated_at": iso_s(at),
            },
            "deployment": {
                "id": dep_id, "sha": sha, "ref": "main", "task": "deploy", "environment": environment,
                "original_environment": environment, "created_at": iso_s(started), "updated_at": iso_s(at),
            },
            "repository": self.repository(),
        }
        self.emit(at, f"github deployment_status {state}", {"webhook": "github", "event": "deployment_status", "payload": payload})

    def deploy(self, at: int, sha: str, environment: str) -> None:
        if self.deployer == "cdevents":
            content = {"environment": {"id": environment}, "artifactId": self.purl(sha)}
            self.emit(at, f"service.deployed {environment}",
                      self.cdevent(at, f"/deployer/{self.repo}", "dev.cdevents.service.deployed.0.3.0", self.name, content))
        else:
            self.deployment_status(at, at - self.rng.randrange(30 * SEC, 5 * MIN), sha, environment, "success")

    def generate(self) -> None:
        r = self.rng
        pr_number = 0
        for t in self.work_times():
            if r.random() < 0.22:
                # A feature branch: 1-3 pushes, a pipeline each, then a squash merge.
                pr_number += 1
                branch = f"feature/{self.name}-{pr_number}"
                pushes = r.randint(1, 3)
                begin = max(self.start, t - r.randrange(2 * HOUR, 4 * DAY))
                before = None
                branch_commits: list[tuple[str, int]] = []
                for p in range(pushes):
                    at = begin + (t - begin) * p // pushes
                    commits = self.commits(at, r.randint(1, 5))
                    branch_commits += [(sha, ct) for sha, ct, _ in commits]
                    before = self.push(at, branch, commits, before)
                    self.pipeline(at, before, branch)
                merged_at = t
                squash = self.sha()
                pr_id = self.next_id()
                title = f"{r.choice(KINDS)}: {r.choice(WORDS)} {r.choice(WORDS)}"
                pr = {
                    "action": "closed",
                    "number": pr_number,
                    "pull_request": {
                        "id": pr_id, "number": pr_number, "state": "closed", "title": title,
                        "created_at": iso_s(begin), "updated_at": iso_s(merged_at), "closed_at": iso_s(merged_at),
                        "merged_at": iso_s(merged_at), "merged": True, "merge_commit_sha": squash,
                        "head": {"ref": branch, "sha": before}, "base": {"ref": "main", "sha": self.head or "0" * 40},
                    },
                    "repository": self.repository(),
                }
                self.emit(merged_at, "github pull_request", {"webhook": "github", "event": "pull_request", "payload": pr})
                main_at = merged_at + 2 * SEC
                # GitHub's squash commit carries the merge time.
                commits = [(squash, merged_at // SEC * SEC, f"{title} (#{pr_number})\n\nSquashed.")]
                self.feature_commits[squash] = branch_commits
            else:
                main_at = t
                commits = self.commits(t, r.randint(1, 5))
            self.head = self.push(main_at, "main", commits, self.head)
            for sha, ct, _ in commits:
                self.pending.append((sha, ct))
                for fsha, fct in self.feature_commits.pop(sha, []):
                    self.pending.append((fsha, fct))
            finished, ok = self.pipeline(main_at, self.head, "main")
            if not ok:
                continue
            rev = self.head
            packaged = finished + r.randrange(5 * SEC, 30 * SEC)
            if self.deployer == "cdevents":
                content = {"change": {"id": rev, "source": self.repo}, "sbom": {"uri": "https://example.com/sbom"}}
                self.emit(packaged, "artifact.packaged",
                          self.cdevent(packaged, f"/ci/{self.repo}", "dev.cdevents.artifact.packaged.0.3.0", self.purl(rev), content))
            staging = packaged + r.randrange(1 * MIN, 5 * MIN)
            self.deploy(staging, rev, "staging")
            self.staging_count += 1
            if r.random() >= 0.55:
                continue
            prod = max(staging + r.randrange(10 * MIN, 4 * HOUR), self.last_prod + MIN)
            if prod >= self.end:
                continue
            if self.deployer == "github":
                prod = prod // SEC * SEC  # GitHub writes times to the second
            if r.random() < 0.04:
                # A failed attempt first (CDEvents has no failed deployment: GitHub's status).
                failed_at = prod - r.randrange(2 * MIN, 10 * MIN)
                self.deployment_status(failed_at, failed_at - r.randrange(30 * SEC, 3 * MIN), rev, "production",
                                       r.choice(["failure", "error"]))
                self.prod.append(Deploy(failed_at, None, rev, success=False))
            self.deploy(prod, rev, "production")
            previous = next((d for d in reversed(self.prod) if d.success), None)
            deployed = Deploy(prod, self.purl(rev) if self.deployer == "cdevents" else None, rev, True, shipped=self.pending)
            self.pending = []
            self.prod.append(deployed)
            self.last_prod = prod
            if previous is not None and r.random() < 0.025 and self.deployer == "cdevents":
                back = prod + r.randrange(5 * MIN, 60 * MIN)
                content = {"environment": {"id": "production"}, "artifactId": previous.artifact}
                self.emit(back, "service.rolledback",
                          self.cdevent(back, f"/deployer/{self.repo}", "dev.cdevents.service.rolledback.0.3.0", self.name, content))
                if back < self.end:
                    deployed.rolled_back = True
                self.last_prod = back
            if r.random() < 0.04:
                self.incident(prod + r.randrange(5 * MIN, 20 * HOUR), deployed)
        # Incidents no deployment explains (some land in an attribution window by chance).
        t = self.start
        while True:
            t += int(r.expovariate(1 / (45 * DAY)))
            if t >= self.end:
                break
            self.incident(t, None)

    def incident(self, detected: int, cause: Deploy | None) -> None:
        r = self.rng
        if detected >= self.end:
            return
        resolved = None
        if r.random() >= 0.08:
            resolved = detected + int(min(5 * DAY, max(5 * MIN, r.lognormvariate(math.log(2 * HOUR), 1.2))))
            if resolved >= self.end:
                resolved = None
        kind = r.random()
        n = self.next_id()
        artifact = root = None
        if cause is not None and kind < 0.3 and cause.shipped:
            # A GitHub issue labelled Incident, naming the commit (Four Keys' convention).
            root = r.choice(cause.shipped)[0]
            number = n % 1_000_000
            issue = {
                "id": n, "number": number, "title": f"{self.name}: elevated errors",
                "body": f"Errors after the last release.\n\nroot cause: {root}\n",
                "labels": [{"id": 1, "name": "Incident", "color": "d73a4a"}],
                "state": "open", "created_at": iso_s(detected), "updated_at": iso_s(detected), "closed_at": None,
            }
            self.emit(detected, "github issues opened", {"webhook": "github", "event": "issues",
                                                          "payload": {"action": "opened", "issue": issue, "repository": self.repository()}})
            if resolved is not None:
                closed = dict(issue, state="closed", updated_at=iso_s(resolved), closed_at=iso_s(resolved))
                self.emit(resolved, "github issues closed", {"webhook": "github", "event": "issues",
                                                              "payload": {"action": "closed", "issue": closed, "repository": self.repository()}})
            # Issue times have second precision.
            detected, resolved = detected // SEC * SEC, (resolved // SEC * SEC if resolved else None)
        else:
            if cause is not None and kind < 0.7 and cause.artifact:
                artifact = cause.artifact
            subject = f"INC-{self.name}-{n}"
            content = {"description": f"{self.name}: error rate above SLO", "environment": {"id": "production"},
                       "service": {"id": self.name}}
            if artifact:
                content["artifactId"] = artifact
            self.emit(detected, "incident.detected",
                      self.cdevent(detected, "/monitoring/prod", "dev.cdevents.incident.detected.0.3.0", subject, content))
            if resolved is not None:
                content = dict(content, description=f"{self.name}: error rate back within SLO")
                self.emit(resolved, "incident.resolved",
                          self.cdevent(resolved, "/monitoring/prod", "dev.cdevents.incident.resolved.0.3.0", subject, content))
        self.incidents.append(Incident(detected, resolved, artifact, root))

    # -- expected figures --------------------------------------------------------------------
    def truth(self, lo: int, hi: int, window_ms: int = DAY) -> dict:
        ok = [d for d in self.prod if d.success]
        deployments = [d for d in ok if lo <= d.at < hi]
        failed_attempts = sum(1 for d in self.prod if not d.success and lo <= d.at < hi)
        leads = sorted((d.at - ct) / 1000 for d in deployments for _, ct in d.shipped)
        attributed: set[int] = set()
        for inc in self.incidents:
            target = None
            if inc.artifact:
                cands = [d for d in ok if d.artifact == inc.artifact and d.at <= inc.detected]
                target = cands[-1] if cands else None
            elif inc.root_cause:
                target = next((d for d in ok if any(s == inc.root_cause for s, _ in d.shipped)), None)
            if target is None:
                before = [d for d in ok if d.at <= inc.detected]
                if before and inc.detected - before[-1].at <= window_ms:
                    target = before[-1]
            if target is not None:
                attributed.add(id(target))
        failed = sum(1 for d in deployments if d.rolled_back or id(d) in attributed)
        recov = [(i.resolved - i.detected) / 1000 for i in self.incidents if i.resolved is not None and lo <= i.resolved < hi]
        return {
            "service": self.name,
            "deployments": len(deployments),
            "failed_attempts": failed_attempts,
            "lead_time_changes": len(leads),
            "lead_time_median_seconds": statistics.median(leads) if leads else None,
            "cfr_failed": failed,
            "incidents_resolved": len(recov),
            "recovery_median_seconds": statistics.median(recov) if recov else None,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--years", type=float, default=2)
    ap.add_argument("--end", default="2026-11-01T00:00:00Z", help="fixed end of the history (RFC 3339)")
    ap.add_argument("--target-events", type=int, default=1_000_000)
    ap.add_argument("--small", action="store_true", help="~20k records, for quick tries")
    ap.add_argument("--org", default="org")
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth", help="write expected production DORA figures per service to this JSON file")
    ap.add_argument("--truth-from", default="2026-10-01")
    ap.add_argument("--truth-to", default="2026-11-01")
    args = ap.parse_args()
    if args.small:
        args.target_events = 20_000
    if args.services < 1 or args.services > 99:
        ap.error("--services must be between 1 and 99")

    end = parse_day(args.end)
    start = end - int(round(args.years * 365)) * DAY
    weights_rng = random.Random(f"mobius-bench:{args.seed}:weights")
    weights = [weights_rng.uniform(0.4, 1.6) for _ in range(args.services)]
    total_items = args.target_events / RECORDS_PER_ITEM
    services = []
    for i in range(args.services):
        items = max(1, round(total_items * weights[i] / sum(weights)))
        s = Service(args.seed, i + 1, start, end, items, args.org)
        s.generate()
        services.append(s)

    count = 0
    with open(args.out, "w", encoding="utf-8") as out:
        merged = heapq.merge(*[((t, s.index, seq, line) for t, seq, line in s.records) for s in services])
        for _, _, _, line in merged:
            out.write(line)
            out.write("\n")
            count += 1

    kinds: dict[str, int] = {}
    for s in services:
        for k, v in s.counts.items():
            kinds[k] = kinds.get(k, 0) + v
    print(f"wrote {count} records for {args.services} services, {iso_s(start)} .. {iso_s(end)} to {args.out}", file=sys.stderr)
    for k in sorted(kinds):
        print(f"  {kinds[k]:>9}  {k}", file=sys.stderr)

    if args.truth:
        lo, hi = parse_day(args.truth_from), parse_day(args.truth_to)
        truth = {
            "seed": args.seed, "from": iso_s(lo), "to": iso_s(hi), "environment": "production",
            "records": count,
            "services": [s.truth(lo, hi) for s in services],
        }
        with open(args.truth, "w", encoding="utf-8") as f:
            json.dump(truth, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
