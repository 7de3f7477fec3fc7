"""Let the prebuilt llama.cpp wheel load on a glibc older than the one it was built with.

`llama-cpp-py-sync` ships llama.cpp as a 5 MB CPU wheel (no compile step), but
its libraries were linked against glibc 2.38 and refuse to load on 2.36
(Debian 12) with "version `GLIBC_2.38' not found". The only 2.38 symbols they
use are the C23 spellings of `sscanf` and the `strto*` family
(`__isoc23_strtol` ...), which glibc 2.38 added so that these functions also
read "0b101" binary literals. llama.cpp parses decimal numbers with them, so
the classic functions behave the same for it.

`patch_library` rewrites such a library in place, without touching its code:
each C23 symbol is renamed to its classic twin (the new name is shorter, so it
is written over the old one in the string table) and bound to the classic
version `GLIBC_2.2.5`, and the now unused 2.38 requirement is marked weak.
Any other 2.38 symbol stops the patch with an error, so nothing is guessed.
A library that needs nothing newer than the running glibc is left alone, which
makes the step a no-op on newer systems and safe to run twice.

    python -m assistant.llm.glibc_compat      # patch the installed wheel if needed
"""

from __future__ import annotations

import os
import platform
import struct
import sys
import tempfile
from pathlib import Path

C23_TWINS = {
    b"__isoc23_sscanf": b"sscanf", b"__isoc23_fscanf": b"fscanf", b"__isoc23_scanf": b"scanf",
    b"__isoc23_vsscanf": b"vsscanf", b"__isoc23_vfscanf": b"vfscanf", b"__isoc23_vscanf": b"vscanf",
    b"__isoc23_strtol": b"strtol", b"__isoc23_strtoul": b"strtoul", b"__isoc23_strtoll": b"strtoll",
    b"__isoc23_strtoull": b"strtoull", b"__isoc23_strtoimax": b"strtoimax", b"__isoc23_strtoumax": b"strtoumax",
}
NEW_VERSION = b"GLIBC_2.38"
CLASSIC_VERSION = b"GLIBC_2.2.5"  # the x86-64 base version every classic libc symbol has
SHT_DYNSYM, SHT_GNU_VERNEED, SHT_GNU_VERSYM = 11, 0x6FFFFFFE, 0x6FFFFFFF
VER_FLG_WEAK = 0x2


class PatchError(RuntimeError):
    pass


def _cstring(data: bytes | bytearray, offset: int) -> bytes:
    return bytes(data[offset:data.index(b"\0", offset)])


def _sections(data: bytearray) -> list[dict[str, int]]:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise PatchError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    out = []
    for index in range(shnum):
        _, kind, _, _, offset, size, link, info, _, _ = struct.unpack_from("<IIQQQQIIQQ", data, shoff + index * shentsize)
        out.append({"type": kind, "offset": offset, "size": size, "link": link, "info": info})
    return out


def _libc_versions(data: bytearray, verneed: dict[str, int], strings: int) -> dict[bytes, tuple[int, int]]:
    """{version name: (version index, offset of its Vernaux entry)} of what the file needs from libc.so.6."""
    found: dict[bytes, tuple[int, int]] = {}
    offset = verneed["offset"]
    for _ in range(verneed["info"]):
        _, count, file_name, aux, next_need = struct.unpack_from("<HHIII", data, offset)
        entry = offset + aux
        for _ in range(count):
            _, _, index, name, next_aux = struct.unpack_from("<IHHII", data, entry)
            if _cstring(data, strings + file_name) == b"libc.so.6":
                found[_cstring(data, strings + name)] = (index, entry)
            if not next_aux:
                break
            entry += next_aux
        if not next_need:
            break
        offset += next_need
    return found


def needs_patch(path: Path) -> bool:
    """The library asks libc for GLIBC_2.38 (and is not marked weak yet)."""
    try:
        return _needs_patch(bytearray(path.read_bytes()))
    except (struct.error, ValueError, IndexError) as exc:
        raise PatchError(f"{path.name}: not a readable ELF library ({exc})") from exc


def _needs_patch(data: bytearray) -> bool:
    sections = _sections(data)
    verneed = next((s for s in sections if s["type"] == SHT_GNU_VERNEED), None)
    dynsym = next((s for s in sections if s["type"] == SHT_DYNSYM), None)
    if verneed is None or dynsym is None:
        return False
    versions = _libc_versions(data, verneed, sections[dynsym["link"]]["offset"])
    if NEW_VERSION not in versions:
        return False
    (flags,) = struct.unpack_from("<H", data, versions[NEW_VERSION][1] + 4)
    return not flags & VER_FLG_WEAK


def patch_library(path: Path) -> int:
    """Bind the C23 symbols of one library to their classic twins; returns how many were rebound."""
    if not needs_patch(path):
        return 0
    try:
        data, rebound = _rebind(path, bytearray(path.read_bytes()))
    except (struct.error, ValueError, IndexError, StopIteration) as exc:
        raise PatchError(f"{path.name}: not a readable ELF library ({exc})") from exc
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(bytes(data))
    os.chmod(tmp.name, path.stat().st_mode)
    os.replace(tmp.name, path)  # atomic: an interrupted patch leaves the old file
    return rebound


def _rebind(path: Path, data: bytearray) -> tuple[bytearray, int]:
    sections = _sections(data)
    dynsym = next(s for s in sections if s["type"] == SHT_DYNSYM)
    versym = next(s for s in sections if s["type"] == SHT_GNU_VERSYM)
    verneed = next(s for s in sections if s["type"] == SHT_GNU_VERNEED)
    strings = sections[dynsym["link"]]["offset"]
    versions = _libc_versions(data, verneed, strings)
    if CLASSIC_VERSION not in versions:
        raise PatchError(f"{path.name}: no {CLASSIC_VERSION.decode()} requirement to rebind to")
    new_index, classic_index = versions[NEW_VERSION][0], versions[CLASSIC_VERSION][0]
    rebound = 0
    for symbol in range(dynsym["size"] // 24):
        (name_offset,) = struct.unpack_from("<I", data, dynsym["offset"] + symbol * 24)
        (version,) = struct.unpack_from("<H", data, versym["offset"] + symbol * 2)
        if version & 0x7FFF != new_index:
            continue
        name = _cstring(data, strings + name_offset)
        twin = C23_TWINS.get(name)
        if twin is None:
            raise PatchError(f"{path.name} needs {name.decode()} from glibc 2.38, which has no older equivalent")
        # Written over the start of the old name; a name sharing its tail ("...strtol") still reads the same.
        data[strings + name_offset:strings + name_offset + len(twin) + 1] = twin + b"\0"
        struct.pack_into("<H", data, versym["offset"] + symbol * 2, classic_index)
        rebound += 1
    flags_at = versions[NEW_VERSION][1] + 4
    (flags,) = struct.unpack_from("<H", data, flags_at)
    struct.pack_into("<H", data, flags_at, flags | VER_FLG_WEAK)
    return data, rebound


def glibc_older_than_238() -> bool:
    version = platform.libc_ver()[1]
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return False  # not glibc (musl, macOS): nothing to do
    return (major, minor) < (2, 38)


def package_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp_py_sync")
    return Path(spec.origin).parent if spec and spec.origin else None


def patch_installed() -> list[tuple[str, int]]:
    """Patch every library of the installed wheel that needs it; [(file, symbols rebound)]."""
    folder = package_dir()
    if folder is None or not glibc_older_than_238():
        return []
    return [(lib.name, patch_library(lib)) for lib in sorted(folder.glob("lib*.so*")) if lib.is_file()]


def main() -> int:
    if package_dir() is None:
        print("llama-cpp-py-sync is not installed: nothing to patch (make llamacpp installs it)", file=sys.stderr)
        return 1
    if not glibc_older_than_238():
        print(f"glibc {platform.libc_ver()[1] or '(none)'}: the llama.cpp wheel loads as it is")
        return 0
    try:
        done = patch_installed()
    except PatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    changed = [f"{name} ({count})" for name, count in done if count]
    print("rebound C23 symbols in " + ", ".join(changed) if changed else "already patched")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
