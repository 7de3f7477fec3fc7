"""What the CPU offers, read from the OS without importing torch (`assistant doctor` must stay fast)."""

from __future__ import annotations


def cpu_has_bfloat16() -> bool:
    """The CPU advertises bfloat16 matrix hardware (AVX512-BF16 or AMX); True where that cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = info.read()
    except OSError:
        return True  # not Linux: nothing to say
    return "avx512_bf16" in flags or "amx_bf16" in flags
