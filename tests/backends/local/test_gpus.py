"""GPU discovery and choice: nvidia-smi parsing, product matching, never double-booking a device."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from runner.backends.local.gpus import Gpu, choose, describe, discover, matching, parse_nvidia_smi

SMI = """0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559
1, GPU-bbbb, NVIDIA H100 80GB HBM3, 81559
2, GPU-cccc, NVIDIA A100-SXM4-40GB, 40960
"""


def test_parse_nvidia_smi() -> None:
    gpus = parse_nvidia_smi(SMI + "garbage line\n\n")
    assert [gpu.index for gpu in gpus] == [0, 1, 2]
    assert gpus[2] == Gpu(2, "GPU-cccc", "NVIDIA A100-SXM4-40GB", 40960)


def test_matching_by_product_name() -> None:
    gpus = parse_nvidia_smi(SMI)
    assert [gpu.index for gpu in matching(gpus, "h100")] == [0, 1]
    assert [gpu.index for gpu in matching(gpus, "A100")] == [2]
    assert matching(gpus, "B200") == []
    assert matching(gpus, None) == gpus


def test_choose_lowest_free() -> None:
    gpus = parse_nvidia_smi(SMI)
    assert choose(gpus, set(), 2) == [0, 1]
    assert choose(gpus, {0}, 2) == [1, 2]
    assert choose(gpus, {0, 2}, 2) is None


@given(st.sets(st.integers(0, 7)), st.integers(1, 8))
def test_choose_never_hands_out_a_busy_device(in_use: set[int], count: int) -> None:
    gpus = [Gpu(i, f"GPU-{i}", "H100", 1) for i in range(8)]
    chosen = choose(gpus, in_use, count)
    if chosen is None:
        assert 8 - len(in_use) < count
    else:
        assert len(chosen) == count == len(set(chosen))
        assert not set(chosen) & in_use


def test_describe() -> None:
    assert describe([]) == "no GPU (nvidia-smi found none)"
    assert describe(parse_nvidia_smi(SMI)) == "3 GPUs (NVIDIA A100-SXM4-40GB, NVIDIA H100 80GB HBM3)"


def test_discover_reads_nvidia_smi_from_path(fake_gpus: Callable[..., None]) -> None:
    fake_gpus(3, "NVIDIA H100 80GB HBM3")
    assert [gpu.name for gpu in discover()] == ["NVIDIA H100 80GB HBM3"] * 3
