#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a circle (docs/architecture.md).

For every crate `*/src` under the given root, each file is a module; an edge a -> b is any
`crate::…` or `super::…` path in a's code (comments and its trailing `#[cfg(test)] mod` left
out) that names module b, where b is not an ancestor of a; a parent also reaches each of its
child modules. A strongly connected set of two or more modules is a circle.

usage: module-cycles.py [ROOT]   exit 0: none; exit 1: each circle printed.
"""
import os
import re
import sys


def module_path(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def is_test_file(src, directory, name):
    rel = os.path.relpath(directory, src).split(os.sep)
    return name == "tests.rs" or name.endswith("_tests.rs") or "tests" in rel or "bin" in rel


def code_of(path):
    text = open(path, encoding="utf-8").read()
    cut = re.search(r"\n#\[cfg\(test\)\]\s*\nmod \w+\s*\{", text)
    if cut:
        text = text[: cut.start()]
    return re.sub(r"//.*$", "", text, flags=re.M)


def edges_of(src):
    files = {}
    for directory, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs") and not is_test_file(src, directory, name):
                path = os.path.join(directory, name)
                files[module_path(src, path)] = path
    modules = set(files)

    def deepest(parts):
        for i in range(len(parts), -1, -1):
            if tuple(parts[:i]) in modules:
                return tuple(parts[:i])
        return ()

    edges = {m: set() for m in modules}
    for m, path in files.items():
        text = code_of(path)
        targets = []
        for found in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
            parts = found.group(2).strip(":").split("::")
            base = [] if found.group(1) == "crate" else list(m[:-1])
            while parts and parts[0] == "super":
                parts, base = parts[1:], base[:-1]
            targets.append(base + parts)
        for group in re.finditer(r"use crate::\{([^;]*)\};", text, re.S):
            for item in group.group(1).split(","):
                words = [w.strip("{} \n") for w in item.split("::")]
                if words and words[0] and words[0] != "self":
                    targets.append(words)
        for t in targets:
            t = deepest(t)
            if t != m and m[: len(t)] != t:
                edges[m].add(t)
    for m in modules:
        if m and m[:-1] in modules:
            edges[m[:-1]].add(m)
    return edges


def circles(edges):
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    found = 0
    for crate in sorted(os.listdir(root)):
        src = os.path.join(root, crate, "src")
        if not os.path.isdir(src):
            continue
        for component in circles(edges_of(src)):
            found += 1
            print(f"{crate}: " + " <-> ".join("::".join(m) or "crate" for m in component))
    print(f"{found} import circle(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
