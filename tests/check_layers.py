#!/usr/bin/env python3
"""check_layers.py - include dependencies between the folders of src/ run one way.

DESIGN
Every `#include "..."` of a file under src/ is resolved (first beside the
file, then from src/, as meson's include_directories('src') does) to the
folder it names; main.c counts as the folder "main". The folders are ranked:

    common <- config, admit, media, engine, obs <- api <- worker <- http <- wyoming <- main

A folder may include only folders of a lower rank (and itself); folders of
the same rank are independent of each other. obs is ranked with config and
friends but may include common only. Any include against that order is
reported with the file and line, and so is any cycle between folders (a
cycle always breaks the order too; it is named separately because it is
the worse news). Exit status 0 when clean, 1 otherwise. Python stdlib only;
tests/run_all.sh runs it as one counted test.

Usage: tests/check_layers.py [SRC_DIR]   (default: src/ beside tests/)
"""
import os
import re
import sys

RANK = {
    "common": 0,
    "config": 1,
    "admit": 1,
    "media": 1,
    "engine": 1,
    "obs": 1,
    "api": 2,
    "worker": 3,
    "http": 4,
    "wyoming": 5,
    "main": 6,
}
# extra limits beyond the rank: a folder that may include only these
ONLY = {"obs": {"common"}}

TEMPORARY_ALLOWED = set()  # (a, b) pairs let through while a move is in progress

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(src, path):
    rel = os.path.relpath(path, src)
    parts = rel.split(os.sep)
    if len(parts) == 1:
        return "main" if parts[0] == "main.c" else None
    return parts[0]


def edges(src):
    """Yields (from_folder, to_folder, file, line_no, include)."""
    for dirpath, _, names in os.walk(src):
        for name in sorted(names):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            here = folder_of(src, path)
            with open(path, encoding="utf-8", errors="replace") as f:
                for no, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    beside = os.path.join(dirpath, inc)
                    target = beside if os.path.exists(beside) else os.path.join(src, inc)
                    if not os.path.exists(target):
                        continue  # generated or system header: not ours
                    there = folder_of(src, os.path.normpath(target))
                    if here and there and here != there:
                        yield here, there, os.path.relpath(path, os.path.dirname(src)), no, inc


def cycles(graph):
    """Strongly connected components with more than one folder (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "src")
    graph, bad, allowed = {}, [], set()
    for a, b, path, no, inc in edges(src):
        graph.setdefault(a, set()).add(b)
        if a not in RANK or b not in RANK:
            bad.append(f"{path}:{no}: {a} -> {b} ({inc}): folder not in the layer table")
        elif (a, b) in TEMPORARY_ALLOWED:
            allowed.add((a, b))
        elif RANK[b] >= RANK[a] or (a in ONLY and b not in ONLY[a]):
            bad.append(f"{path}:{no}: {a} -> {b} ({inc}): against the layer order")
    found = cycles(graph)
    for comp in found:
        print("include cycle between folders: " + " <-> ".join(comp))
    for line in bad:
        print(line)
    for a, b in sorted(allowed):
        print(f"note: {a} -> {b} passes only by the temporary allowance (TEMPORARY_ALLOWED)")
    if found or bad:
        print(f"FAIL layers: {len(bad)} include(s) against the order, {len(found)} cycle(s)")
        return 1
    print("ok   layers: include dependencies between src/ folders run one way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
