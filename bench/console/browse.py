#!/usr/bin/env python3
"""The console as a browser sees it, on loopback: sign in with a token, then for each page
the latency of repeated requests (one keep-alive connection, one request in flight) and the
bytes a first visit transfers (the page and every asset it links, headers included).

    browse.py --port P --token T --n 200 PATH [PATH ...]

Prints one JSON object per page on its own line: path, status, n, p50/p90/p99/max in ms,
first_visit_bytes (page + assets, headers included), page_bytes, assets.
"""

import argparse
import http.client
import json
import re
import sys
import time
import urllib.parse


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def wire_size(resp, body):
    """Bytes of a response as sent: status line, headers, blank line, body."""
    head = f"HTTP/1.1 {resp.status} {resp.reason}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in resp.getheaders()) + "\r\n"
    return len(head.encode()) + len(body)


def sign_in(conn, token):
    """The session cookie, through the sign-in form as a person would use it."""
    conn.request("GET", "/login")
    resp = conn.getresponse()
    html = resp.read().decode()
    login_cookie = resp.getheader("Set-Cookie").split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    body = urllib.parse.urlencode({"token": token, "next": "/", "csrf": csrf})
    conn.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie})
    resp = conn.getresponse()
    resp.read()
    cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"]
    session = [c.split(";")[0] for c in cookies if c.startswith("mobius_session=")]
    if resp.status != 303 or not session:
        sys.exit(f"sign-in failed: {resp.status}")
    return session[0]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
    cookie = sign_in(conn, args.token)
    headers = {"Cookie": cookie, "Accept": "text/html"}
    failed = 0
    for path in args.paths:
        # A first visit: the page, then each asset it links (once each).
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        page = resp.read()
        status = resp.status
        total = wire_size(resp, page)
        assets = sorted(set(re.findall(r'(?:href|src)="(/assets/[^"]+)"', page.decode(errors="replace"))))
        for asset in assets:
            conn.request("GET", asset, headers=headers)
            a = conn.getresponse()
            total += wire_size(a, a.read())
        times = []
        for i in range(args.warmup + args.n):
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status != 200:
                failed += 1
            if i >= args.warmup:
                times.append(elapsed)
        print(json.dumps({
            "path": path, "status": status, "n": len(times),
            "p50_ms": round(pct(times, 50), 2), "p90_ms": round(pct(times, 90), 2),
            "p99_ms": round(pct(times, 99), 2), "max_ms": round(max(times), 2),
            "first_visit_bytes": total, "page_bytes": len(page), "assets": len(assets),
        }), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
