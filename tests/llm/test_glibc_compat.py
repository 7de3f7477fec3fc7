"""Rebinding the prebuilt llama.cpp libraries' glibc 2.38 symbols (assistant/llm/glibc_compat.py).

The ELF files here are built byte by byte with exactly the tables the patch
reads (dynamic symbols, their version indexes, the version requirements and
the string table), so the logic is checked without a compiler; the installed
wheel, when present, is checked for the result.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from assistant.llm import glibc_compat
from assistant.llm.glibc_compat import PatchError, needs_patch, patch_library


def _elf(symbols: list[tuple[str, str]]) -> bytes:
    """A minimal ELF64: .dynstr, .dynsym, .gnu.version, .gnu.version_r; symbols are (name, glibc version)."""
    strings = bytearray(b"\0")

    def add(text: str) -> int:
        offset = len(strings)
        strings.extend(text.encode() + b"\0")
        return offset

    versions = sorted({v for _, v in symbols})
    index = {v: i + 2 for i, v in enumerate(versions)}  # 0 local, 1 global
    libc = add("libc.so.6")
    names = []
    for name, _ in symbols:
        if name == "strtol" and any(n == "__isoc23_strtol" for n, _ in symbols):
            names.append(strings.index(b"__isoc23_strtol\0") + 9)  # shares the tail, as linkers do
        else:
            names.append(add(name))
    version_names = {v: add(v) for v in versions}
    dynsym = bytes(24) + b"".join(struct.pack("<IBBHQQ", n, 0x12, 0, 0, 0, 0) for n in names)
    versym = struct.pack("<H", 0) + b"".join(struct.pack("<H", index[v]) for _, v in symbols)
    aux = b""
    for i, v in enumerate(versions):
        last = i == len(versions) - 1
        aux += struct.pack("<IHHII", 0, 0, index[v], version_names[v], 0 if last else 16)
    verneed = struct.pack("<HHIII", 1, len(versions), libc, 16, 0) + aux
    body = [bytes(strings), dynsym, versym, verneed]
    offsets, cursor = [], 64
    for part in body:
        offsets.append(cursor)
        cursor += len(part) + (-len(part)) % 8
    shoff = cursor
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, 5, 0)
    kinds = [(3, 0, 0), (11, 1, 1), (0x6FFFFFFF, 2, 0), (0x6FFFFFFE, 1, 1)]  # strtab, dynsym, versym, verneed
    sections = bytes(64)
    for (kind, link, info), offset, part in zip(kinds, offsets, body):
        sections += struct.pack("<IIQQQQIIQQ", 0, kind, 0, 0, offset, len(part), link, info, 8, 0)
    out = bytearray(header)
    for part in body:
        out += part + bytes((-len(part)) % 8)
    return bytes(out + sections)


def _bound(path: Path) -> list[tuple[str, int]]:
    """[(symbol name, version index)] as the patched file now says."""
    data = path.read_bytes()
    sections = glibc_compat._sections(bytearray(data))
    strings = sections[1]["offset"]  # section 0 is the null section
    dynsym, versym = sections[2], sections[3]
    out = []
    for i in range(1, dynsym["size"] // 24):
        (name,) = struct.unpack_from("<I", data, dynsym["offset"] + i * 24)
        (version,) = struct.unpack_from("<H", data, versym["offset"] + i * 2)
        out.append((glibc_compat._cstring(data, strings + name).decode(), version))
    return out


def test_c23_symbols_are_rebound_to_their_classic_twins(tmp_path):
    lib = tmp_path / "libdemo.so"
    lib.write_bytes(_elf([("__isoc23_strtol", "GLIBC_2.38"), ("strtol", "GLIBC_2.2.5"),
                          ("__isoc23_sscanf", "GLIBC_2.38"), ("memcpy", "GLIBC_2.14")]))
    assert needs_patch(lib)
    assert patch_library(lib) == 2
    # version indexes in sorted order: 2 = GLIBC_2.14, 3 = GLIBC_2.2.5, 4 = GLIBC_2.38
    # (the second "strtol" shares the first name's tail in the string table and still reads the same)
    assert _bound(lib) == [("strtol", 3), ("strtol", 3), ("sscanf", 3), ("memcpy", 2)]
    assert not needs_patch(lib) and patch_library(lib) == 0  # the 2.38 need is weak now: a second run is a no-op


def test_a_238_symbol_without_an_older_twin_stops_the_patch(tmp_path):
    lib = tmp_path / "libdemo.so"
    original = _elf([("__isoc23_strtol", "GLIBC_2.38"), ("some_new_call", "GLIBC_2.38"), ("puts", "GLIBC_2.2.5")])
    lib.write_bytes(original)
    with pytest.raises(PatchError, match="some_new_call"):
        patch_library(lib)
    assert lib.read_bytes() == original  # nothing half-written


def test_a_library_that_needs_nothing_new_is_left_alone(tmp_path):
    lib = tmp_path / "libdemo.so"
    original = _elf([("strtol", "GLIBC_2.2.5")])
    lib.write_bytes(original)
    assert not needs_patch(lib) and patch_library(lib) == 0 and lib.read_bytes() == original
    (tmp_path / "notes.txt").write_text("not an ELF file")
    with pytest.raises(PatchError):
        patch_library(tmp_path / "notes.txt")


@pytest.mark.skipif(glibc_compat.package_dir() is None, reason="llama-cpp-py-sync is not installed")
def test_the_installed_wheel_loads_on_this_glibc():
    from llama_cpp_py_sync import _cffi_bindings as native

    glibc_compat.patch_installed()
    assert not any(needs_patch(lib) for lib in glibc_compat.package_dir().glob("lib*.so*"))
    assert native.get_lib() is not None  # dlopen succeeded
