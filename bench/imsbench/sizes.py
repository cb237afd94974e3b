"""Sizes: the binary as built (checked stripped and static from its ELF headers), the zip, and
the peer's node_modules."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

from .paths import BUILD, PEER, ROOT


def elf_facts(data: bytes) -> dict:
    """Is this ELF64 stripped (no .symtab) and static (no PT_INTERP, no DT_NEEDED)?"""
    if data[:4] != b"\x7fELF" or len(data) < 64 or data[4] != 2:
        return {"elf64": False}
    end = "<" if data[5] == 1 else ">"
    (e_phoff, e_shoff) = struct.unpack_from(end + "QQ", data, 0x20)
    (e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from(end + "HHHHH", data, 0x36)
    interp, needed, dyn = False, 0, None
    for i in range(e_phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(end + "IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 3:
            interp = True
        elif p_type == 2:
            dyn = (p_offset, p_filesz)
    if dyn:
        for off in range(dyn[0], dyn[0] + dyn[1], 16):
            tag, _ = struct.unpack_from(end + "qQ", data, off)
            if tag == 0:
                break
            needed += tag == 1
    names = []
    if e_shoff and e_shnum and e_shstrndx < e_shnum:
        str_off = struct.unpack_from(end + "Q", data, e_shoff + e_shstrndx * e_shentsize + 0x18)[0]
        for i in range(e_shnum):
            name_off = struct.unpack_from(end + "I", data, e_shoff + i * e_shentsize)[0]
            s = data[str_off + name_off: data.index(b"\0", str_off + name_off)]
            names.append(s.decode(errors="replace"))
    return {"elf64": True, "stripped": ".symtab" not in names, "static": not interp and needed == 0,
            "interp": interp, "needed": needed}


def dir_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            fp = os.path.join(dirpath, f)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def binary_facts(exe: Path, name: str = "ims-action") -> dict:
    """An executable's size as built and after `strip` (a stripped copy under bench/.build when
    it is not stripped already), and whether it is stripped and static."""
    facts = elf_facts(exe.read_bytes())
    size = exe.stat().st_size
    stripped_size = size
    if facts.get("elf64") and not facts.get("stripped") and shutil.which("strip"):
        BUILD.mkdir(exist_ok=True)
        tmp = BUILD / f"{name}.stripped"
        subprocess.run(["strip", "-o", str(tmp), str(exe)], check=True)
        stripped_size = tmp.stat().st_size
    if not facts.get("elf64"):
        facts.update({"stripped": False, "static": False})
    return {"path": rel(exe), "bytes": size, "stripped_bytes": stripped_size, **facts}


def sizes_section(cfg) -> dict:
    out = {"binary": binary_facts(Path(cfg.ims_action_path))}
    z = Path(cfg.zip_path)
    out["zip"] = {"path": rel(z), "bytes": z.stat().st_size if z.exists() else None}
    nm = PEER / "node_modules"
    out["node_modules_bytes"] = dir_size(nm) if nm.exists() else None
    return out
