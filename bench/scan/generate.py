#!/usr/bin/env python3
"""Writes a deterministic tree of source-like text with a few planted secrets.

Usage: generate.py DIR MEGABYTES

Files of 40-200 KB mimic Python, Go, YAML and .env sources, full of the words secret
scanners key on (token, key, password, secret) in harmless forms, so a keyword prefilter is
exercised rather than bypassed. PLANTED.tsv lists each planted secret (kind, file, secret);
they are synthetic: format-valid, obviously generated.
"""
import os
import random
import sys

root, megabytes = sys.argv[1], float(sys.argv[2])
rng = random.Random(16)
WORDS = ("request response handler token_count api key_name password_policy secret_ref config "
         "deploy rollout service metric value index buffer client server retry timeout budget "
         "window event record cursor offset limit stream batch cache lookup parse render").split()


def ident():
    return "_".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


def line(kind):
    r = rng.random()
    if kind == "py":
        if r < 0.3:
            return f"    {ident()} = {ident()}({ident()}, {rng.randint(0, 9999)})"
        if r < 0.5:
            return f"def {ident()}(self, {ident()}, {ident()}=None):"
        if r < 0.6:
            return f"    # {' '.join(rng.choice(WORDS) for _ in range(8))}"
        if r < 0.7:
            return f"    token = self.{ident()}.get_token()"
        return f"    return {ident()}.{ident()}({ident()})"
    if kind == "go":
        if r < 0.4:
            return f"\t{ident()} := {ident()}.{ident().title()}(ctx, {ident()})"
        if r < 0.6:
            return f"\tif err != nil {{ return fmt.Errorf(\"{ident()}: %w\", err) }}"
        if r < 0.7:
            return f"\tkey := os.Getenv(\"{ident().upper()}\")"
        return f"\t// {' '.join(rng.choice(WORDS) for _ in range(10))}"
    if kind == "yaml":
        if r < 0.5:
            return f"  {ident()}: {ident()}-{rng.randint(0, 99)}"
        if r < 0.7:
            return f"  password: ${{{{ secrets.{ident().upper()} }}}}"
        return f"  - name: {ident()}\n    value: \"{rng.randint(0, 10**6)}\""
    return f"{ident().upper()}={ident()}"


SECRETS = {
    "github-pat": lambda: "ghp_" + "".join(rng.choice("ABCDEFabcdef0123456789") for _ in range(36)),
    "aws-access-key-id": lambda: "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
    "slack-bot-token": lambda: "xoxb-{}-{}-{}".format(
        rng.randint(10**10, 10**11), rng.randint(10**11, 10**12),
        "".join(rng.choice("ABCDEFabcdef0123456789") for _ in range(24))),
    "stripe-secret-key": lambda: "sk_live_" + "".join(rng.choice("ABCDEFabcdef0123456789") for _ in range(24)),
}

os.makedirs(root, exist_ok=True)
total, target, n = 0, int(megabytes * 1e6), 0
planted = []
kinds = ["py", "go", "yaml", "env"]
while total < target:
    kind = kinds[n % 4]
    path = os.path.join(root, f"pkg{n // 100:03d}", f"file{n:05d}.{kind}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    size = rng.randint(40_000, 200_000)
    lines, written = [], 0
    while written < size:
        text = line(kind)
        lines.append(text)
        written += len(text) + 1
    if n % 97 == 13:
        rule, make = list(SECRETS.items())[len(planted) % len(SECRETS)]
        secret = make()
        lines.insert(len(lines) // 2, f'DEPLOY_CREDENTIAL = "{secret}"')
        planted.append((rule, os.path.relpath(path, root), secret))
    data = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(data)
    total += len(data)
    n += 1
with open(os.path.join(os.path.dirname(root.rstrip("/")), "PLANTED.tsv"), "w") as f:
    for row in planted:
        f.write("\t".join(row) + "\n")
print(f"{n} files, {total / 1e6:.1f} MB, {len(planted)} planted secrets")
