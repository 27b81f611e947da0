#!/usr/bin/env python3
"""Import cycles between the files of a Rust crate's src/ (default: api/src). Run from the repository root:
`python3 scripts/import-cycles.py [--max 2] [--no-tests] [api/src]`.

Edges: every `crate::...`, `super::...` and `self::...` path in a file (use statements, grouped
imports expanded, and paths written inline), resolved to the deepest module that is a file.
`mod x;` declarations and references to the crate root (lib.rs) are not edges. Prints the
strongly connected components with more than one file; exits 1 when one is longer than the
allowed size (--max, default 2).
"""
import argparse, os, re, sys

def strip_comments(src):
    src = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
    out = []
    for line in src.splitlines():
        # drop // comments (naive about strings, good enough for paths)
        i = line.find('//')
        out.append(line if i < 0 else line[:i])
    return '\n'.join(out)

def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ('lib', 'main', 'mod'):
        rel = rel[:-1]
    return tuple(rel)

def expand_use(text):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']"""
    text = re.sub(r'\s+', '', text)
    def split_top(s):
        parts, depth, cur = [], 0, ''
        for ch in s:
            if ch == '{': depth += 1
            if ch == '}': depth -= 1
            if ch == ',' and depth == 0:
                parts.append(cur); cur = ''
            else:
                cur += ch
        if cur: parts.append(cur)
        return parts
    def go(s):
        i = s.find('{')
        if i < 0:
            return [re.sub(r'as\w+$', '', s)]
        prefix, inner = s[:i], s[i+1:s.rfind('}')]
        return [prefix + p2 for part in split_top(inner) for p2 in go(part)]
    return go(text)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('src', nargs='?', default='api/src')
    ap.add_argument('--max', type=int, default=2)
    ap.add_argument('--no-tests', action='store_true', help='ignore #[cfg(test)] modules')
    a = ap.parse_args()
    files = {}
    for d, _, fs in os.walk(a.src):
        for f in fs:
            if f.endswith('.rs'):
                p = os.path.join(d, f)
                files[module_of(a.src, p)] = p
    edges = {m: set() for m in files}
    reexports = {}
    for mod, path in files.items():
        src = strip_comments(open(path, encoding='utf-8').read())
        src = re.sub(r'#\[cfg\(test\)\]\s*mod\s+\w+\s*\{.*', '', src, flags=re.S)
        r = {}
        for m in re.finditer(r'\bpub(?:\([^)]*\))?\s+use\s+([^;]*);', src):
            for p in expand_use(m.group(1)):
                r[p.split('::')[-1]] = p
        reexports[mod] = r
    def follow(target, name, seen):
        """The file that defines `name` reached through `target` (re-exports followed)."""
        if target is None or target in seen:
            return target
        seen.add(target)
        p = reexports.get(target, {}).get(name)
        if p is None:
            return target
        segs = [s for s in p.split('::') if s]
        if segs[0] == 'crate':
            cur, segs = [], segs[1:]
        else:
            cur = list(target)
            while segs and segs[0] in ('super', 'self'):
                if segs[0] == 'super':
                    cur = cur[:-1]
                segs = segs[1:]
        best, t = None, list(cur)
        for s in segs:
            t.append(s)
            if tuple(t) in files:
                best = tuple(t)
        if best is None:
            return target
        return follow(best, name, seen)
    for mod, path in files.items():
        src = strip_comments(open(path, encoding='utf-8').read())
        if a.no_tests:
            src = re.sub(r'#\[cfg\(test\)\]\s*mod\s+\w+\s*\{.*', '', src, flags=re.S)
        # inline modules: find `mod name {` and their spans, to resolve super:: inside them
        spans = []
        for m in re.finditer(r'\bmod\s+(\w+)\s*\{', src):
            depth, j = 0, m.end() - 1
            while j < len(src):
                if src[j] == '{': depth += 1
                elif src[j] == '}':
                    depth -= 1
                    if depth == 0: break
                j += 1
            spans.append((m.start(), j))
        def inline_depth(pos):
            return sum(1 for s, e in spans if s < pos < e)
        paths = []
        for m in re.finditer(r'\buse\s+((?:crate|super|self)\b[^;]*);', src):
            for p in expand_use(m.group(1)):
                paths.append((m.start(), p))
        for m in re.finditer(r'(?<![\w:])((?:crate|super|self)(?:::\w+)+)', src):
            # skip those already inside a use statement (handled above)
            line_start = src.rfind('\n', 0, m.start()) + 1
            if re.match(r'\s*(pub(\([^)]*\))?\s+)?use\b', src[line_start:]):
                continue
            paths.append((m.start(), m.group(1)))
        for pos, p in paths:
            segs = [s for s in p.split('::') if s]
            base = list(mod) + ['<inline>'] * inline_depth(pos)
            if segs[0] == 'crate':
                cur, segs = [], segs[1:]
            else:
                cur = base
                while segs and segs[0] in ('super', 'self'):
                    if segs[0] == 'super':
                        cur = cur[:-1]
                    segs = segs[1:]
                cur = [c for c in cur if c != '<inline>']
            target, best = list(cur), None
            if tuple(target) in files:
                best = tuple(target)
            for s in segs:
                target.append(s)
                if tuple(target) in files:
                    best = tuple(target)
            # follow re-exports: `pub use x::Name` in the target file points at x's file
            best = follow(best, p.split('::')[-1], set())
            if best is None or best == () or best == mod:
                continue
            edges[mod].add(best)
    # Tarjan
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)
    def strong(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
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
    for v in sorted(edges):
        if v not in index:
            strong(v)
    name = lambda m: os.path.relpath(files[m], a.src)
    bad = 0
    cycles = sorted((c for c in sccs if len(c) > 1), key=len, reverse=True)
    for c in cycles:
        flag = 'TOO LONG' if len(c) > a.max else 'ok'
        print(f'{len(c)} files ({flag}): ' + ', '.join(sorted(name(m) for m in c)))
        bad += len(c) > a.max
    print(f'{len(files)} files, {sum(len(e) for e in edges.values())} edges, '
          f'{len(cycles)} cycles, longest {max((len(c) for c in cycles), default=0)}')
    sys.exit(1 if bad else 0)

main()
