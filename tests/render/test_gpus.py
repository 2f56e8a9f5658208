"""gpuType on a cluster: a model name people write (H100) reaches nodes labelled with full product names."""

from __future__ import annotations

import pytest

from runner.backends.kubernetes.pure.status import Request, pending_reason
from runner.render.gpus import GPU_PRODUCT_LABEL, GPU_PRODUCTS, gpu_placement, gpu_products
from tests.render.test_kubernetes import manifest_of, pod, render
from tests.support.kube_rules import ALL_VERSIONS, validate


def required_products(pod_spec: dict[str, object]) -> list[str]:
    affinity = pod_spec["affinity"]["nodeAffinity"]  # type: ignore[index]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    (expression,) = term["matchExpressions"]
    assert (expression["key"], expression["operator"]) == (GPU_PRODUCT_LABEL, "In")
    return list(expression["values"])


@pytest.mark.parametrize("written", ["H100", "h100"])
def test_a_model_name_means_every_product_of_that_model(written: str) -> None:
    assert "NVIDIA-H100-80GB-HBM3" in gpu_products(written)
    assert all("H100" in product for product in gpu_products(written))


def test_a_product_label_selects_exactly_that_product() -> None:
    assert gpu_placement("NVIDIA-H100-PCIe") == {"nodeSelector": {GPU_PRODUCT_LABEL: "NVIDIA-H100-PCIe"}}
    assert gpu_placement("L4") == {
        "nodeSelector": {GPU_PRODUCT_LABEL: "NVIDIA-L4"}
    }  # one product: no affinity


def test_an_unknown_name_is_taken_as_written() -> None:
    assert gpu_products("MI300X") == ("MI300X",)


def test_every_known_product_is_a_valid_label_value() -> None:
    for products in GPU_PRODUCTS.values():
        for product in products:
            assert len(product) <= 63 and product.replace("-", "").replace(".", "").isalnum()


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_a_job_asking_for_h100s_requires_h100_nodes(version: str) -> None:
    _, job = render(manifest_of(resources={"gpu": 2, "gpuType": "H100"}))
    spec = pod(job)
    assert "nodeSelector" not in spec
    assert required_products(spec) == list(GPU_PRODUCTS["H100"])
    validate(job, version)


def test_no_matching_node_is_said_in_the_jobs_terms() -> None:
    message = (
        "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 "
        "nodes are available: 4 Preemption is not helpful for scheduling."
    )
    assert pending_reason(message, Request(gpus=1, gpu_type="H100")) == "waiting: no node has H100 GPUs"
    assert pending_reason(message, Request(gpus=1, gpu_type="NVIDIA-H100-PCIe")) == (
        "waiting: no node has NVIDIA-H100-PCIe GPUs"
    )
