#!/usr/bin/env python3
"""Lists the file-level `use crate::` / `use super::` edges among a crate's
source files and prints every cycle (strongly connected component > 1).
Usage: scripts/import-cycles.py query-api/src"""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "query-api/src"
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            p = os.path.relpath(os.path.join(d, f), root)
            files[p] = open(os.path.join(d, f)).read()

def module_of(path):
    parts = path[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts

def file_of(mod):
    for cand in ("/".join(mod) + ".rs", "/".join(mod + ["mod"]) + ".rs"):
        if cand in files:
            return cand
    if not mod:
        return "lib.rs"
    return None

def resolve(path, segs):
    """Longest prefix of segs that is a module file."""
    for n in range(len(segs), -1, -1):
        f = file_of(segs[:n])
        if f:
            return f
    return None

use_re = re.compile(r"\b(?:use|pub\s+use|pub\(crate\)\s+use)\s+((?:crate|super)(?:::[\w{}, :*\n]+)?)", re.M)
path_re = re.compile(r"\b((?:crate|super)(?:::\w+)+)")
edges = {f: set() for f in files}
for f, text in files.items():
    me = module_of(f)
    code = re.sub(r"//[^\n]*", "", text)
    code = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", code, flags=re.S)
    def add(segs):
        if segs[0] == "crate":
            base, rest = [], segs[1:]
        else:
            base, rest = me, segs
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        t = resolve(f, base + rest)
        if t and t != f:
            edges[f].add(t)
    for m in path_re.finditer(code):
        add(m.group(1).split("::"))
    # `use crate::{a::X, b::Y}`: each item's first segment.
    for m in re.finditer(r"\b(crate|super)::\{([^;]*)\}\s*;", code):
        for item in re.split(r",(?![^{]*\})", m.group(2)):
            first = item.strip().split("::")[0].strip()
            if re.fullmatch(r"\w+", first) and first != "self":
                add([m.group(1), first])

# Tarjan
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
sys.setrecursionlimit(10000)
for v in sorted(files):
    if v not in index:
        strong(v)
if "-v" in sys.argv:
    for f in sorted(edges):
        for t in sorted(edges[f]):
            print(f"{f} -> {t}")
cycles = [sorted(c) for c in sccs if len(c) > 1]
print(f"{len(files)} files, {sum(len(e) for e in edges.values())} edges, {len(cycles)} cycles")
for c in cycles:
    print("cycle:", " ".join(c))
sys.exit(1 if cycles else 0)
