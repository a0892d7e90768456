#!/usr/bin/env python3
"""Writes the same job DAG as a GitHub Actions workflow and as a Makefile.

    python3 bench/dag/generate.py OUT_DIR [--levels 10] [--width 20] [--fanin 2]

OUT_DIR/.github/workflows/dag.yml: LEVELS x WIDTH jobs `jL_I`; a job of level L > 0 `needs`
jobs I, I+1, ... (FANIN of them, modulo WIDTH) of level L-1; one step, `run: true`.
OUT_DIR/Makefile: the same DAG, each target's recipe `true`, every target .PHONY; `all`
depends on the last level. OUT_DIR/Makefile.bash: the same, with the recipes run by
`bash --noprofile --norc -eo pipefail -c` (the shell `mobius run` uses for `run:` steps).
Standard library only; deterministic.
"""
import argparse
import os


def job(level, index):
    return f"j{level}_{index}"


def deps(level, index, width, fanin):
    if level == 0:
        return []
    return [job(level - 1, (index + k) % width) for k in range(fanin)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--levels", type=int, default=10)
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--fanin", type=int, default=2)
    args = parser.parse_args()
    levels, width, fanin = args.levels, args.width, min(args.fanin, args.width)

    wf = ["name: dag", "on: push", "jobs:"]
    for level in range(levels):
        for index in range(width):
            wf.append(f"  {job(level, index)}:")
            wf.append("    runs-on: ubuntu-latest")
            needs = deps(level, index, width, fanin)
            if needs:
                wf.append(f"    needs: [{', '.join(needs)}]")
            wf.append("    steps:")
            wf.append("      - run: true")
    os.makedirs(os.path.join(args.out, ".github", "workflows"), exist_ok=True)
    with open(os.path.join(args.out, ".github", "workflows", "dag.yml"), "w") as f:
        f.write("\n".join(wf) + "\n")

    targets = [job(level, index) for level in range(levels) for index in range(width)]
    rules = [f"all: {' '.join(job(levels - 1, i) for i in range(width))}", ""]
    for level in range(levels):
        for index in range(width):
            rules.append(f"{job(level, index)}: {' '.join(deps(level, index, width, fanin))}".rstrip())
            rules.append("\ttrue")
    phony = f".PHONY: all {' '.join(targets)}"
    for name, header in [
        ("Makefile", []),
        ("Makefile.bash", ["SHELL := bash", ".SHELLFLAGS := --noprofile --norc -eo pipefail -c"]),
    ]:
        with open(os.path.join(args.out, name), "w") as f:
            f.write("\n".join(header + [phony, ""] + rules) + "\n")
    print(f"{levels * width} jobs, {levels} levels x {width}, fan-in {fanin}")


if __name__ == "__main__":
    main()
