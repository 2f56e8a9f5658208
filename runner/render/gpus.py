"""From a manifest's `gpuType` to the nodes that have such GPUs.

NVIDIA's GPU feature discovery labels each node with its exact product, `nvidia.com/gpu.product`
(`NVIDIA-H100-80GB-HBM3`, `NVIDIA-A100-SXM4-40GB`, `Tesla-T4`, ...), but people ask for an `H100`. A
node selector needs the exact value, so a short model name becomes a required node affinity on the
products known to carry it; a gpuType that already looks like a product label (it has a '-', like
`NVIDIA-H100-PCIe`) selects exactly that product. Pure data and functions: Kubernetes rendering and the
pending-reason wording both use them.
"""

from __future__ import annotations

from typing import Any

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"

# Product labels as GPU feature discovery writes them (the CUDA device name, spaces as '-').
GPU_PRODUCTS: dict[str, tuple[str, ...]] = {
    "B200": ("NVIDIA-B200",),
    "H200": ("NVIDIA-H200", "NVIDIA-H200-NVL"),
    "H100": ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL", "NVIDIA-H100-SXM5-80GB"),
    "GH200": ("NVIDIA-GH200-480GB",),
    "A100": (
        "NVIDIA-A100-SXM4-80GB",
        "NVIDIA-A100-SXM4-40GB",
        "NVIDIA-A100-80GB-PCIe",
        "NVIDIA-A100-PCIE-40GB",
    ),
    "A10G": ("NVIDIA-A10G",),
    "A10": ("NVIDIA-A10",),
    "L40S": ("NVIDIA-L40S",),
    "L4": ("NVIDIA-L4",),
    "T4": ("Tesla-T4",),
    "V100": ("Tesla-V100-SXM2-16GB", "Tesla-V100-SXM2-32GB", "Tesla-V100-PCIE-16GB", "Tesla-V100-PCIE-32GB"),
}


def gpu_products(gpu_type: str) -> tuple[str, ...]:
    """The product labels a gpuType stands for: a known model's products, else the value itself."""
    return GPU_PRODUCTS.get(gpu_type.upper(), (gpu_type,))


def gpu_placement(gpu_type: str) -> dict[str, Any]:
    """The pod spec fields that keep a pod on nodes with this GPU type: a nodeSelector for one exact
    product, a required node affinity for a model name that several products carry."""
    products = gpu_products(gpu_type)
    if len(products) == 1:
        return {"nodeSelector": {GPU_PRODUCT_LABEL: products[0]}}
    expression = {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": list(products)}
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [expression]}]
                }
            }
        }
    }
