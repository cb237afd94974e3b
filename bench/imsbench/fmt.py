"""How numbers are written in the report: a few significant digits, thousands separators, "–"
for a missing value."""
from __future__ import annotations

MIB = 1024 * 1024


def _missing(x) -> bool:
    return x is None or x != x  # None or NaN


def ms(x) -> str:
    """Milliseconds: 0.82, 50.1, 586, 1,065."""
    if _missing(x):
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def signed_ms(x) -> str:
    """A difference in milliseconds, with its sign: +1.40, −0.70 (the minus sign, not a hyphen)."""
    if _missing(x):
        return "–"
    return ("+" if x >= 0 else "−") + ms(abs(x))


def us(x) -> str:
    """Microseconds: 3.2, 68.5, 1,234."""
    if _missing(x):
        return "–"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def times(x) -> str:
    """A ratio, without the × sign: 713, 61, 4.21, 1.003."""
    if _missing(x):
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if 0.9 <= x < 1.1:
        return f"{x:.3f}"
    return f"{x:.3g}"


def mib(kib) -> str:
    """KiB as MiB, one decimal."""
    return "–" if _missing(kib) else f"{kib / 1024:.1f}"


def per(x) -> str:
    """A per-activation count: 0, 1, 2, 0.005, 1.5."""
    if _missing(x):
        return "–"
    if x == int(x):
        return f"{int(x)}"
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def esc(s: str) -> str:
    """Text for XML (SVG)."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
