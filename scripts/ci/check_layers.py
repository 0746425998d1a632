#!/usr/bin/env python3
"""Checks the import rule of the trainer's layers (ARCHITECTURE.md, "Invariants").

    bin → tasks → {losses, metrics} → models → {runtime, data, io} → error

Every `crate::…` path in trainer/src (in `use` items and inline paths) is an
edge from the module of the file to the top-level module it names; for
`tasks`, to the task (`tasks::pretrain`, …). The check fails on:
  - an upward edge (a lower layer naming a higher one),
  - an edge between two tasks (shared code belongs a layer down),
  - a cycle among the modules of one layer (e.g. runtime ⇄ io),
  - a top-level module that is not in the layer table (add it where it belongs).
The binary (src/bin/chess-train/) reaches the library as `chess_train::…`, so
any library path is allowed there; the library never names the binary.
Prints each violation with file and line; exit 1 when there is one.
"""
import re
import sys
from pathlib import Path

LAYERS = {
    "error": 0,
    "runtime": 1, "data": 1, "io": 1,
    "models": 2,
    "losses": 3, "metrics": 3,
    "tasks": 4,
}
ROOT_FILES = {"lib.rs"}
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)(?:::([a-z_][a-z0-9_]*))?")
USE = re.compile(r"\buse\s+(crate::[^;]*);", re.S)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module_of(rel):
    """(top-level module, task or None) of a file relative to src/."""
    parts = rel.parts
    top = parts[0][:-3] if parts[0].endswith(".rs") else parts[0]
    task = None
    if top == "tasks" and len(parts) > 1:
        task = parts[1][:-3] if parts[1].endswith(".rs") else parts[1]
        if task == "mod":
            task = None
    return top, task


def expand(tree):
    """Paths of a use tree: `a::{b, c::{d, e}}` → a::b, a::c::d, a::c::e."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1:tree.rindex("}")]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    return [p for it in items if it for p in expand(prefix + it)]


def targets(text):
    """(top, second segment, line) of every crate:: path in `text`."""
    for m in USE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        for path in expand(m.group(1)):
            seg = path.split("::")
            yield seg[1] if len(seg) > 1 else "", seg[2] if len(seg) > 2 else None, line
    rest = USE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for m in PATH.finditer(rest):
        yield m.group(1), m.group(2), rest.count("\n", 0, m.start()) + 1


def check(src):
    """The violations of the rule in the crate source folder `src`."""
    errors = []
    edges = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src)
        if rel.parts[0] == "bin" or rel.name in ROOT_FILES and len(rel.parts) == 1:
            continue
        top, task = module_of(rel)
        if top not in LAYERS:
            errors.append(f"{rel}: top-level module `{top}` is not in the layer table of {Path(__file__).name}")
            continue
        text = strip_comments(f.read_text())
        for to_top, to_second, line in targets(text):
            if to_top in ("self", "super"):
                continue
            if to_top not in LAYERS:
                # Items re-exported at the crate root (Result, TrainError) live in error.rs.
                to_top = "error"
            if LAYERS[to_top] > LAYERS[top]:
                errors.append(f"{rel}:{line}: `{top}` (layer {LAYERS[top]}) imports `{to_top}` (layer {LAYERS[to_top]}): upward")
            if top == "tasks" and to_top == "tasks" and to_second and task and to_second != task:
                errors.append(f"{rel}:{line}: task `{task}` imports task `{to_second}`: move the shared code down a layer")
            if to_top != top and LAYERS[to_top] == LAYERS[top]:
                edges.setdefault(top, {}).setdefault(to_top, f"{rel}:{line}")
    # Cycles among same-layer modules (a → b and b → a, or longer).
    cycles = {}

    def visit(node, stack, seen):
        for nxt, where in edges.get(node, {}).items():
            if nxt in stack:
                ring = stack[stack.index(nxt):]
                first = ring.index(min(ring))
                ring = ring[first:] + ring[:first]
                cycles.setdefault(" → ".join(ring + [ring[0]]), edges[ring[0]][ring[1 % len(ring)]])
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, stack + [nxt], seen)
    for start in sorted(edges):
        visit(start, [start], {start})
    errors += [f"cycle {ring} (edge at {where})" for ring, where in cycles.items()]
    return sorted(set(errors))


def self_test():
    """The checker finds each kind of violation in a small made-up tree, and none in a clean one."""
    import tempfile
    files = {
        "lib.rs": "pub mod error; pub mod models; pub mod runtime; pub mod io; pub mod tasks;",
        "error.rs": "",
        "runtime/mod.rs": "use crate::io::atomic;",
        "io/mod.rs": "use crate::{runtime::device, error::TrainError};",
        "models/resnet.rs": "use crate::{runtime::device, Result};\nfn f() { crate::tasks::pretrain::x(); }",
        "tasks/pretrain/mod.rs": "use crate::models::resnet::ResNet;\n// use crate::tasks::classify::X; (a comment)",
        "tasks/classify/mod.rs": "use crate::tasks::{classify::y, pretrain::moco::Moco};",
        "widgets.rs": "",
    }
    with tempfile.TemporaryDirectory() as d:
        for name, text in files.items():
            f = Path(d) / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        found = "\n".join(check(Path(d)))
    expected = ["models/resnet.rs:2: `models` (layer 2) imports `tasks` (layer 4): upward",
                "tasks/classify/mod.rs:1: task `classify` imports task `pretrain`",
                "cycle io → runtime → io", "top-level module `widgets` is not in the layer table"]
    missing = [e for e in expected if e not in found]
    assert not missing, f"self-test: not found {missing} in:\n{found}"
    assert "tasks/pretrain" not in found, f"self-test: a comment was read as an import:\n{found}"
    assert found.count("\n") + 1 == len(expected), f"self-test: unexpected findings:\n{found}"


def main():
    self_test()
    errors = check(Path(__file__).resolve().parents[2] / "trainer" / "src")
    for e in errors:
        print(e)
    if errors:
        print(f"check_layers: {len(errors)} violation(s) of the trainer's import rule", file=sys.stderr)
        return 1
    print("check_layers: trainer imports point down only (self-test passed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
