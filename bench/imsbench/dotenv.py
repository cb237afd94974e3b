"""`.env` files as `aio` reads them (dotenv), the same rules as src/runtime/dotenv.rs: `KEY=value`
lines, `#` comments, an optional `export `, single- or double-quoted values (double quotes expand
`\\n`, `\\r` and `\\"`, and may span lines), an unquoted value ending at ` #`. Malformed lines are
skipped. The bench's one reader: the emulator's demo `.env` goes through here."""
from __future__ import annotations

import re
from pathlib import Path

_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _closes(buf: str, quote: str) -> bool:
    """Whether `buf` holds an unescaped `quote`."""
    escaped = False
    for c in buf:
        if c == "\\" and not escaped:
            escaped = True
        elif c == quote and not escaped:
            return True
        else:
            escaped = False
    return False


def parse(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.lstrip()
        line = line.removeprefix("export ")
        if line.startswith("#") or not line.strip() or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if not key or not _KEY.match(key):
            continue
        value = value.strip()
        if value.startswith('"'):
            buf = value[1:]
            while not _closes(buf, '"'):
                nxt = next(lines, None)
                if nxt is None:
                    break
                buf += "\n" + nxt
            end = buf.rfind('"')
            inner = buf[:end] if end >= 0 else buf
            parsed = inner.replace("\\n", "\n").replace("\\r", "\r").replace('\\"', '"')
        elif value.startswith("'"):
            rest = value[1:]
            end = rest.rfind("'")
            parsed = rest[:end] if end >= 0 else rest
        else:
            parsed = value.split(" #", 1)[0].strip()
        out[key] = parsed
    return out


def read(path: Path) -> dict[str, str]:
    return parse(Path(path).read_text())
