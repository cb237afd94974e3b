#!/usr/bin/env python3
"""Docs that cannot rot: `make docs-check` (part of `make test`) runs this.

It checks, from the repository root:

1. links: every relative link and #anchor in README.md, CHANGELOG.md and docs/*.md resolves
   (files exist; anchors follow GitHub's heading slugs, or an explicit <a id="…">);
2. reachability: every docs/*.md can be reached from README.md by following links;
3. operations: docs/operations.md has an entry for every answer and log line an operator can meet:
   - every variant of the enums in ENUMS (the action's `Error`, the store's `StoreError`), named
     as `Error::Variant`, and the fixed text of its message template (from its Display arm);
   - every `ops: <key>` marker in the sources (SOURCES): a row with `<a id="<key>">`, and, for Rust
     and JavaScript, the fixed text of the first string literal after the marker;
   - every place that needs a marker (NEEDS_MARKER: warn/error log lines, configuration errors,
     the seal's answers...) has one within MARKER_REACH lines above it;
4. quickstart: the commands in the README's Quickstart code block are ones CI runs (.ci/run,
   directly or as a prerequisite of a make target it runs);
5. make targets: every `make <target>` the docs show in code is a target of the Makefile.

Adding an entry (for the integrator): put `// ops: some-key` (or `# ops: some-key` in shell) on
the line above the message in the source, and a row in docs/operations.md whose message cell
starts with `<a id="some-key"></a>` and quotes the message's fixed text. A new enum to cover goes
in ENUMS; a new source tree in SOURCES; a new rule in NEEDS_MARKER.

Python 3 standard library only. Exit status 0 when everything holds, 1 with one line per problem.
"""

import os
import re
import sys
import unicodedata
from collections import deque

# (file, enum name): each variant needs `Name::Variant` and its message's fixed text in operations.md.
ENUMS = [
    ("src/error.rs", "Error"),
    ("src/token/store/backend.rs", "StoreError"),
]
# Where `ops:` markers are looked for (directories are walked; only these extensions).
SOURCES = ["src", "actions/ims-action/index.js", "scripts/deploy-aio.sh", "scripts/deploy-wsk.sh"]
SOURCE_EXTENSIONS = (".rs", ".js", ".sh")
# (path prefix, regex): a line matching needs an `ops:` marker at most MARKER_REACH lines above.
# A construction, not a pattern (`Error::Forbidden(_) => 403`, `Sealing::Broken(why) =>`).
BUILT = r"\((?!\w*\)\s*(?:=>|\||\)|,))"
NEEDS_MARKER = [
    ("src/", re.compile(r"\blog::(warn|error)!")),
    ("src/", re.compile(r"\bError::(Configuration|Forbidden)" + BUILT)),
    ("src/", re.compile(r"\bSealing::Broken" + BUILT)),
    ("src/action/seal.rs", re.compile(r"\bError::invalid\(")),
]
MARKER_REACH = 4
# The marked message is the first string literal with fixed text this many lines below the marker.
LITERAL_REACH = 6
OPERATIONS = "docs/operations.md"
MARKER = re.compile(r"(?://|#)\s*ops:\s*([a-z0-9][a-z0-9-]*)\s*$")
# Fixed text shorter than this is not distinctive enough to look for.
MIN_FRAGMENT = 8


# ---------------------------------------------------------------- markdown


def strip_code(text):
    """The text with fenced code blocks blanked (line numbers kept) and inline code spans removed."""
    out, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            out.append("")
            continue
        if fence is not None:
            if re.match(r"^\s{0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + ",}\s*$", line):
                fence = None
            out.append("")
            continue
        out.append(re.sub(r"(`+)(?:(?!\1).)+?\1", "", line))
    return "\n".join(out)


def slug(heading):
    """GitHub's anchor for a heading's text: rendered text, lower case, punctuation dropped
    (letters, digits, `_`, `-` and spaces kept), spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "")
    text = text.strip().lower()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "-_ " or cat[0] in ("L", "N") or cat == "Mn":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors(text):
    """Every anchor a markdown file offers: heading slugs (with GitHub's -1, -2 for repeats)
    and explicit id= / name= attributes."""
    found, seen = set(), {}
    for line in strip_code_keep_headings(text).split("\n"):
        m = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            found.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    for m in re.finditer(r"""<a\s[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", text):
        found.add(m.group(1))
    return found


def strip_code_keep_headings(text):
    """Fenced blocks blanked, inline code kept (a heading's `code` is part of its slug)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            out.append("")
            continue
        out.append(line)
    return "\n".join(out)


LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+)", re.M)
HTML_REF = re.compile(r"""<(?:a|img)\s[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""")


def links(text):
    """(line number, target) of every link, image, reference definition and HTML href/src
    outside code."""
    body = strip_code(text)
    found = []
    for pattern in (LINK, REF_DEF, HTML_REF):
        for m in pattern.finditer(body):
            target = m.group(1).strip("<>")
            found.append((body.count("\n", 0, m.start()) + 1, target))
    return sorted(found)


def is_external(target):
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


def check_links(root, files):
    """Problems with the relative links of `files` (paths relative to root), and the graph of
    markdown-to-markdown links (for reachability)."""
    problems, graph, cache = [], {}, {}

    def anchors_of(path):
        if path not in cache:
            with open(os.path.join(root, path), encoding="utf-8") as f:
                cache[path] = anchors(f.read())
        return cache[path]

    for rel in files:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text = f.read()
        graph[rel] = set()
        for line, target in links(text):
            if is_external(target):
                continue
            path_part, _, anchor = target.partition("#")
            path_part = path_part.split("?")[0]
            if path_part:
                dest = os.path.normpath(os.path.join(os.path.dirname(rel), path_part))
                if dest.startswith(".."):
                    problems.append(f"{rel}:{line}: link '{target}' leaves the repository")
                    continue
                if not os.path.exists(os.path.join(root, dest)):
                    problems.append(f"{rel}:{line}: link '{target}': {dest} does not exist")
                    continue
            else:
                dest = rel
            if dest.endswith(".md") and os.path.isfile(os.path.join(root, dest)):
                graph[rel].add(dest)
                if anchor and anchor not in anchors_of(dest):
                    problems.append(f"{rel}:{line}: link '{target}': no heading or id '{anchor}' in {dest}")
    return problems, graph


def check_reachable(root, graph, start, required):
    """Problems for every file of `required` that cannot be reached from `start` through links."""
    seen, todo = {start}, deque([start])
    while todo:
        here = todo.popleft()
        if here not in graph and here.endswith(".md") and os.path.isfile(os.path.join(root, here)):
            _, more = check_links(root, [here])
            graph.update(more)
        for nxt in graph.get(here, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return [f"{r}: not reachable from {start} (link it from the README's map of the docs)"
            for r in sorted(required) if r not in seen]


# ---------------------------------------------------------------- sources


def rust_strings(code):
    """The string literals in a piece of Rust, decoded (escapes, `\\` line continuations)."""
    out, i = [], 0
    while i < len(code):
        c = code[i]
        if code.startswith("//", i):
            j = code.find("\n", i)
            i = len(code) if j < 0 else j
            continue
        m = re.match(r'r(#*)"', code[i:]) if c == "r" and (i == 0 or not (code[i - 1].isalnum() or code[i - 1] == "_")) else None
        if m:
            end = '"' + m.group(1)
            j = code.find(end, i + len(m.group(0)))
            if j < 0:
                break
            out.append(code[i + len(m.group(0)):j])
            i = j + len(end)
            continue
        if c == "'":  # a char literal or a lifetime: skip '"' and '\"' so they open no string
            m = re.match(r"'(\\.|[^\\'])'", code[i:])
            i += len(m.group(0)) if m else 1
            continue
        if c != '"':
            i += 1
            continue
        i += 1
        buf = []
        while i < len(code) and code[i] != '"':
            if code[i] == "\\" and i + 1 < len(code):
                nxt = code[i + 1]
                if nxt == "\n":
                    i += 2
                    while i < len(code) and code[i] in " \t\r\n":
                        i += 1
                    continue
                buf.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(nxt, nxt))
                i += 2
                continue
            buf.append(code[i])
            i += 1
        out.append("".join(buf))
        i += 1
    return out


def js_strings(code):
    """The string literals ('…', "…", `…`) in a piece of JavaScript; ${…} kept as a placeholder."""
    out = []
    for m in re.finditer(r"'((?:\\.|[^'\\\n])*)'|\"((?:\\.|[^\"\\\n])*)\"|`((?:\\.|[^`\\])*)`", code):
        s = next(g for g in m.groups() if g is not None)
        s = re.sub(r"\$\{[^}]*\}", "{}", s)
        out.append(re.sub(r"\\(.)", r"\1", s))
    return out


def fragment(template):
    """The longest fixed piece of a message template (between {placeholders}), whitespace
    collapsed, or None when no piece is distinctive enough."""
    pieces = re.split(r"\{[^{}]*\}", template.replace("{{", "{").replace("}}", "}"))
    pieces = [normalise(p).strip(" :;,.'\"()") for p in pieces]
    best = max(pieces, key=len, default="")
    return best if len(best) >= MIN_FRAGMENT else None


def normalise(text):
    """What fragment matching compares: no markdown code ticks or escapes, one space for any run
    of whitespace, typographic quotes as plain ones."""
    text = text.replace("`", "").replace("\\|", "|")
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text)


def strip_tests(text):
    """Rust source without its `#[cfg(test)]` module (the convention here: at the end)."""
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod\s+\w+", text, re.M)
    return text[: m.start()] if m else text


def enum_variants(text, name):
    """The variant names of `enum name` in Rust source."""
    m = re.search(r"\benum\s+" + re.escape(name) + r"\b[^{]*\{", text)
    if not m:
        return None
    depth, i, start = 1, m.end(), m.end()
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    body = text[start : i - 1]
    body = re.sub(r"//[^\n]*", "", body)
    body = re.sub(r"#\[[^\]]*\]", "", body)
    variants, depth, token = [], 0, ""
    for ch in body:
        if ch in "{(":
            if depth == 0 and token.strip():
                variants.append(token.strip())
                token = ""
            depth += 1
        elif ch in "})":
            depth -= 1
        elif depth == 0:
            if ch == ",":
                if token.strip():
                    variants.append(token.strip())
                token = ""
            else:
                token += ch
    if token.strip():
        variants.append(token.strip())
    return [v for v in variants if re.fullmatch(r"[A-Z]\w*", v)]


def display_templates(text, name):
    """For each variant of `name`, the message templates of its arms in `impl Display for name`."""
    m = re.search(r"impl\s+(?:std::)?fmt::Display\s+for\s+" + re.escape(name) + r"\b", text)
    if not m:
        return {}
    rest = text[m.end():]
    arms = re.split(r"\n\s*" + re.escape(name) + r"::", rest)
    templates = {}
    for arm in arms[1:]:
        variant = re.match(r"\w+", arm).group(0)
        arm = arm.split("\nimpl ")[0]
        templates.setdefault(variant, []).extend(rust_strings(arm))
    return templates


def walk_sources(root):
    for entry in SOURCES:
        full = os.path.join(root, entry)
        if os.path.isfile(full):
            yield entry
        for dirpath, _, names in os.walk(full):
            for n in sorted(names):
                if n.endswith(SOURCE_EXTENSIONS):
                    yield os.path.relpath(os.path.join(dirpath, n), root)


def markers(root):
    """(file, line, key, first string literal after the marker or None) for every `ops:` marker,
    and the problems of places that need one and have none."""
    found, problems = [], []
    for rel in walk_sources(root):
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text = f.read()
        if rel.endswith(".rs"):
            text = strip_tests(text)
        lines = text.split("\n")
        marked = set()
        for n, line in enumerate(lines):
            m = MARKER.search(line)
            if not m:
                continue
            marked.update(range(n + 1, n + 1 + MARKER_REACH))
            after = "\n".join(lines[n + 1 : n + 1 + LITERAL_REACH])
            literal = None
            if rel.endswith(".rs"):
                strings = [s for s in rust_strings(after) if fragment(s)]
                literal = strings[0] if strings else None
            elif rel.endswith(".js"):
                strings = [s for s in js_strings(after) if fragment(s)]
                literal = strings[0] if strings else None
            found.append((rel, n + 1, m.group(1), literal))
        for prefix, pattern in NEEDS_MARKER:
            if not rel.startswith(prefix):
                continue
            for n, line in enumerate(lines):
                if line.lstrip().startswith("//"):
                    continue
                if pattern.search(line) and n not in marked:
                    problems.append(
                        f"{rel}:{n + 1}: '{pattern.pattern}' with no `// ops: <key>` marker in the "
                        f"{MARKER_REACH} lines above it (add one, and a row with <a id=\"<key>\"></a> "
                        f"in {OPERATIONS})"
                    )
    return found, problems


def check_operations(root):
    path = os.path.join(root, OPERATIONS)
    if not os.path.isfile(path):
        return [f"{OPERATIONS}: missing"]
    with open(path, encoding="utf-8") as f:
        ops = f.read()
    ops_text = normalise(ops)
    ids = anchors(ops)
    problems = []
    for rel, enum in ENUMS:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            src = strip_tests(f.read())
        variants = enum_variants(src, enum)
        if not variants:
            problems.append(f"{rel}: no `enum {enum}` found (update ENUMS in scripts/check-docs.py)")
            continue
        templates = display_templates(src, enum)
        for v in variants:
            if f"{enum}::{v}" not in ops:
                problems.append(f"{OPERATIONS}: no entry names `{enum}::{v}` ({rel})")
            for t in templates.get(v, []):
                frag = fragment(t)
                if frag and frag not in ops_text:
                    problems.append(
                        f"{OPERATIONS}: the message of `{enum}::{v}` ({rel}) is not quoted: '{frag}'")
    found, missing = markers(root)
    problems += missing
    keys = {}
    for rel, line, key, literal in found:
        if key in keys and keys[key] != (rel, line):
            # One key may mark several places with the same message; the text must match each.
            pass
        keys.setdefault(key, (rel, line))
        if key not in ids:
            problems.append(f"{rel}:{line}: marker 'ops: {key}' has no row with <a id=\"{key}\"></a> in {OPERATIONS}")
        if literal is not None:
            frag = fragment(literal)
            if frag and frag not in ops_text:
                problems.append(f"{rel}:{line}: the message marked 'ops: {key}' is not quoted in {OPERATIONS}: '{frag}'")
    return problems


# ---------------------------------------------------------------- quickstart


def make_targets(makefile_text):
    """target -> prerequisites, from the Makefile's rule lines."""
    rules = {}
    for m in re.finditer(r"^([a-zA-Z0-9_.-]+(?:\s+[a-zA-Z0-9_.-]+)*)\s*:(?!=)([^\n#]*)", makefile_text, re.M):
        for t in m.group(1).split():
            rules.setdefault(t, []).extend(m.group(2).split())
    return rules


def ci_commands(ci_text, rules):
    """Every command line of the CI script, and every make target it runs (with prerequisites)."""
    lines = [l.strip() for l in ci_text.split("\n") if l.strip() and not l.strip().startswith("#")]
    targets, todo = set(), []
    for l in lines:
        m = re.match(r"^make\s+(.*)$", l)
        if m:
            todo += [w for w in m.group(1).split() if "=" not in w and not w.startswith("-")]
    while todo:
        t = todo.pop()
        if t not in targets:
            targets.add(t)
            todo += rules.get(t, [])
    return set(lines), targets


def quickstart_commands(readme):
    """The command lines of the first code block under the README's Quickstart heading."""
    m = re.search(r"^#{1,6}\s+Quickstart\s*$", readme, re.M)
    if not m:
        return None
    block = re.search(r"^```[^\n]*\n(.*?)^```", readme[m.end():], re.M | re.S)
    if not block:
        return None
    cmds = []
    for line in block.group(1).split("\n"):
        line = line.split(" #")[0].strip()
        if line and not line.startswith("#"):
            cmds.append(line)
    return cmds


def check_quickstart(root):
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        cmds = quickstart_commands(f.read())
    if not cmds:
        return ["README.md: no code block under a 'Quickstart' heading"]
    with open(os.path.join(root, "Makefile"), encoding="utf-8") as f:
        rules = make_targets(f.read())
    with open(os.path.join(root, ".ci/run"), encoding="utf-8") as f:
        lines, targets = ci_commands(f.read(), rules)
    problems = []
    for c in cmds:
        m = re.match(r"^make\s+([\w.-]+)$", c)
        if m and m.group(1) in targets:
            continue
        if c in lines:
            continue
        problems.append(f"README.md: Quickstart command '{c}' is not run by CI (.ci/run or a make target it runs)")
    return problems


def code_of(text):
    """The code in markdown: fenced blocks and inline spans."""
    code, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            else:
                code.append(line)
            continue
        code += [m.group(2) for m in re.finditer(r"(`+)((?:(?!\1).)+?)\1", line)]
    return "\n".join(code)


def check_make_targets(root, files):
    """Problems for every `make <target>` in the docs' code that the Makefile does not have."""
    with open(os.path.join(root, "Makefile"), encoding="utf-8") as f:
        rules = make_targets(f.read())
    problems = []
    for rel in files:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            code = code_of(f.read())
        for m in re.finditer(r"(?<![\w-])make[ \t]+((?:[A-Z_]+=\S*[ \t]+)*)([a-z][\w-]*)", code):
            if m.group(2) not in rules:
                problems.append(f"{rel}: `make {m.group(2)}` is not a target of the Makefile")
    return sorted(set(problems))


# ---------------------------------------------------------------- main


def doc_files(root):
    docs = sorted(os.path.join("docs", n) for n in os.listdir(os.path.join(root, "docs")) if n.endswith(".md"))
    return docs


def check(root):
    docs = doc_files(root)
    top = [f for f in ("README.md", "CHANGELOG.md") if os.path.isfile(os.path.join(root, f))]
    problems, graph = check_links(root, top + docs)
    problems += check_reachable(root, graph, "README.md", docs)
    problems += check_operations(root)
    problems += check_quickstart(root)
    problems += check_make_targets(root, top + docs)
    return problems


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check-docs: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-docs: links, reachability, {OPERATIONS} coverage, the Quickstart and make targets hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
