#!/usr/bin/env python3
"""Limits under connection and upload floods (see limits.sh).

A fresh `mobius serve` (default limits) is flooded from a separate process (asyncio, one
thread) while this process asks `GET /healthz` on a new connection each time and samples the
server's VmRSS from /proc every 50 ms (the peak of a phase is the larger of those samples and its
VmHWM, reset when it starts):

- phase `unauthenticated`: IDLE connections that send nothing (reopened when the server
  closes them), and UPLOADS slow uploads declaring a 10 MiB body, half to
  `POST /api/v1/webhooks/github` with a signature that cannot be right, half to
  `POST /api/v1/events` without a token;
- phase `ingest token`: the same idle connections, and UPLOADS slow uploads to
  `POST /api/v1/events` with a valid `ingest` token.

A slow upload sends CHUNK bytes every EVERY ms, waiting whenever the server stops reading;
once answered (or cut off) it reconnects after a second and starts over, so the flood holds
its size for the whole phase. Between phases the script waits until the server holds no more
sockets than before the flood.

Prints a Markdown table and writes the figures as JSON beside the data directory.
"""
import argparse
import asyncio
import collections
import json
import math
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import http.client
import urllib.request

ADMIN = "bench-admin-token-0123456789abcdefghijkl"
GITHUB_SECRET = "bench-github-webhook-secret"
BODY = 10 << 20


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def open_sockets(pid):
    """The server's sockets: its listener and connections (not the files it opens as it goes)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


# ---------------------------------------------------------------- the flood (its own process)

async def idle_connection(host, port, stats):
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats["connect errors"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["idle open"] += 1
        try:
            await reader.read(4096)  # returns when the server closes (or answers, then closes)
            stats["idle closed by the server"] += 1
        except OSError:
            stats["idle closed by the server"] += 1
        finally:
            stats["idle open"] -= 1
            writer.close()


def status_of(data):
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/"):
        return parts[1].decode()
    return "no answer"


async def slow_upload(host, port, path, headers, chunk, every, stats):
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {BODY}\r\n{headers}\r\n"
    ).encode()
    filler = b" " * chunk
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats["connect errors"] += 1
            await asyncio.sleep(1)
            continue
        stats["uploads open"] += 1
        answer = asyncio.ensure_future(reader.read(4096))
        sent = 0
        try:
            writer.write(head)
            while sent < BODY and not answer.done():
                n = min(chunk, BODY - sent)
                writer.write(filler[:n])
                sent += n
                # Wait for the server to take it (or to answer instead): never buffer ahead.
                drain = asyncio.ensure_future(writer.drain())
                await asyncio.wait({drain, answer}, return_when=asyncio.FIRST_COMPLETED)
                if not drain.done():
                    drain.cancel()
                elif drain.exception() is not None:
                    break
                if answer.done():
                    break
                await asyncio.sleep(every)
            try:
                data = await asyncio.wait_for(answer, 120)
            except (asyncio.TimeoutError, OSError):
                data = b""
            stats["answer " + status_of(data)] += 1
        except OSError:
            stats["answer reset"] += 1
        finally:
            stats["uploads open"] -= 1
            stats["MiB sent"] += sent / (1 << 20)
            writer.close()
        await asyncio.sleep(1)


async def flood_main(host, port, idle, uploads, chunk, every, stop, out):
    stats = collections.Counter()
    tasks = [asyncio.ensure_future(idle_connection(host, port, stats)) for _ in range(idle)]
    for i, (path, headers) in enumerate(uploads):
        tasks.append(asyncio.ensure_future(slow_upload(host, port, path, headers, chunk, every, stats)))
        if i % 50 == 49:
            await asyncio.sleep(0)
    while not stop.is_set():
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.put(dict(stats))


def flood(host, port, idle, uploads, chunk, every, stop, out):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(flood_main(host, port, idle, uploads, chunk, every, stop, out))


# ---------------------------------------------------------------- measuring (this process)

def healthz(host, port):
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        conn.close()
        ok = response.status == 200
    except OSError:
        ok = False
    return time.perf_counter() - started, ok


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.05)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def reset_peak(pid):
    """Resets the process's VmHWM to its current RSS (Linux 4.0+; root or the same user)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def phase(name, server, host, port, args, uploads, baseline_sockets):
    stop, out = mp.Event(), mp.Queue()
    exact = reset_peak(server.pid)
    sampler = Sampler(server.pid)
    sampler.start()
    worker = mp.Process(target=flood, args=(host, port, args.idle, uploads, args.chunk, args.every / 1000, stop, out))
    worker.start()
    # Ramp: until the server holds (nearly) all the flood's connections, at most 30 s.
    wanted = baseline_sockets + int(0.95 * (args.idle + len(uploads)))
    ramp_started = time.time()
    while open_sockets(server.pid) < wanted and time.time() - ramp_started < 30:
        time.sleep(0.1)
    ramp = time.time() - ramp_started
    held = open_sockets(server.pid) - baseline_sockets
    latencies, failed, held_min, held_max = [], 0, held, held
    for _ in range(args.healthz):
        seconds, ok = healthz(host, port)
        latencies.append(seconds)
        failed += 0 if ok else 1
        now_held = open_sockets(server.pid) - baseline_sockets
        held_min, held_max = min(held_min, now_held), max(held_max, now_held)
        time.sleep(args.healthz_every / 1000)
    stop.set()
    stats = out.get(timeout=120)
    worker.join(timeout=60)
    sampler.running = False
    sampler.join()
    # VmHWM since the reset catches a peak the 50 ms samples miss; the kernel updates it lazily,
    # so a sample may be a little higher: the larger of the two.
    peak = max(rss_kib(server.pid, "VmHWM"), sampler.peak) if exact else sampler.peak
    released_started = time.time()
    while open_sockets(server.pid) > baseline_sockets + 1 and time.time() - released_started < 120:
        time.sleep(0.1)
    released = time.time() - released_started
    return {
        "phase": name,
        "ramp_s": round(ramp, 2),
        "connections_held_min": held_min,
        "connections_held_max": held_max,
        "healthz_n": len(latencies),
        "healthz_failed": failed,
        "healthz_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "healthz_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "healthz_max_ms": round(max(latencies) * 1000, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_peak_from": "VmHWM and VmRSS sampled every 50 ms" if exact else "VmRSS sampled every 50 ms",
        "rss_peak_sampled_mib": round(sampler.peak / 1024, 1),
        "released_s": round(released, 2),
        "sockets_after": open_sockets(server.pid),
        "flood": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in sorted(stats.items())},
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mobius", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--idle", type=int, default=2000)
    p.add_argument("--uploads", type=int, default=200)
    p.add_argument("--chunk", type=int, default=64 << 10, help="bytes per write of a slow upload")
    p.add_argument("--every", type=int, default=100, help="ms between writes of a slow upload")
    p.add_argument("--healthz", type=int, default=200, help="/healthz requests per phase")
    p.add_argument("--healthz-every", type=int, default=150, help="ms between them")
    args = p.parse_args()

    data = os.path.join(args.work, "data")
    env = dict(os.environ, MOBIUS_ADMIN_TOKEN=ADMIN, MOBIUS_GITHUB_WEBHOOK_SECRET=GITHUB_SECRET, MOBIUS_LOG="warn")
    log = open(os.path.join(args.work, "serve.log"), "w")
    server = subprocess.Popen(
        [args.mobius, "--data-dir", data, "serve", "--listen", "127.0.0.1:0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = None
    for line in server.stderr:
        log.write(line)
        if line.startswith("mobius listening on "):
            base = line.split()[-1]
            break
    if base is None:
        sys.exit("the server did not start; see serve.log")
    threading.Thread(target=lambda: [log.write(l) for l in server.stderr], daemon=True).start()
    host, port = base.removeprefix("http://").rsplit(":", 1)
    port = int(port)

    request = urllib.request.Request(
        base + "/api/v1/tokens", data=json.dumps({"scope": "ingest", "name": "bench"}).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as r:
        ingest = json.load(r)["token"]

    time.sleep(1)
    idle_rss = rss_kib(server.pid)
    baseline_sockets = open_sockets(server.pid)
    half = args.uploads // 2
    unsigned = "x-github-event: push\r\nx-hub-signature-256: sha256:" + "0" * 64 + "\r\n"
    unauthenticated = [("/api/v1/webhooks/github", unsigned)] * (args.uploads - half) + [("/api/v1/events", "")] * half
    with_token = [("/api/v1/events", f"authorization: Bearer {ingest}\r\n")] * args.uploads
    results = []
    try:
        results.append(phase("unauthenticated", server, host, port, args, unauthenticated, baseline_sockets))
        results.append(phase("ingest token", server, host, port, args, with_token, baseline_sockets))
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)

    summary = {
        "idle_rss_mib": round(idle_rss / 1024, 1),
        "server_alive_after": alive,
        "idle": args.idle,
        "uploads": args.uploads,
        "chunk": args.chunk,
        "every_ms": args.every,
        "phases": results,
    }
    with open(os.path.join(args.work, "limits.json"), "w") as f:
        json.dump(summary, f, indent=2)

    print(f"server RSS idle {summary['idle_rss_mib']} MiB; still serving after the floods: {alive}")
    print(f"flood: {args.idle} idle connections + {args.uploads} slow 10 MiB uploads "
          f"({args.chunk >> 10} KiB every {args.every} ms each)\n")
    print("| phase | connections held | /healthz p50 / p99 / max | failed | RSS peak (sampled) | released in |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['phase']} | {r['connections_held_min']}–{r['connections_held_max']} "
              f"| {r['healthz_p50_ms']} / {r['healthz_p99_ms']} / {r['healthz_max_ms']} ms "
              f"| {r['healthz_failed']}/{r['healthz_n']} | {r['rss_peak_mib']} MiB ({r['rss_peak_sampled_mib']}) "
              f"| {r['released_s']} s |")
    for r in results:
        print(f"\n{r['phase']}: " + ", ".join(f"{k}: {v}" for k, v in r["flood"].items()))


if __name__ == "__main__":
    main()
