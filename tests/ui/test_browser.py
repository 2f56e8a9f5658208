"""The dashboard's pages in real headless Chromium: curves grow while a run trains, a finished run's
artifacts download with their checksums, and a log line that is HTML stays text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.config import load_settings
from runner.service.runs import RunService
from runner.ui.app import create_app
from runner.ui.context import Dashboard
from tests.conftest import wait_for, wait_for_state
from tests.ui.browser import chromium, require_browser, screenshots_dir, serving
from tests.ui.conftest import StartTraining

HOSTILE = "<script>alert(1)</script>"
WAIT = 30


@pytest.fixture
def site(home: Path, tmp_path: Path) -> Iterator[tuple[Any, str, Path]]:
    """A browser, the dashboard's address, and the browser's downloads directory."""
    require_browser()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    app = create_app(Dashboard(runs=lambda: RunService(load_settings())), allowed_hosts=["127.0.0.1"])
    with serving(app) as base, chromium(downloads) as driver:
        yield driver, base, downloads


def attribute(driver: Any, selector: str, name: str) -> str:
    value: str = driver.execute_script(f"return document.querySelector({selector!r}).getAttribute({name!r})")
    return value


def points(driver: Any, chart: str) -> int:
    script = (
        f"const box = document.querySelector('[data-chart=\"{chart}\"] canvas');"
        "const made = box && Chart.getChart(box); return made ? made.data.labels.length : 0;"
    )
    count: int = driver.execute_script(script)
    return count


def no_alert(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018  (asking is the check)
    except NoAlertPresentException:
        return True
    return False


def test_a_training_run_s_curve_grows_and_its_artifacts_download(
    site: tuple[Any, str, Path], start_training: StartTraining
) -> None:
    driver, base, downloads = site
    shots = screenshots_dir()
    training = start_training("live", epochs=3)
    wait_for_state(training.run, "running")
    driver.get(f"{base}/runs/{training.run}")
    training.epoch(1)
    wait_for(lambda: points(driver, "epoch:loss") == 1, timeout=WAIT, what="the first epoch on the curve")
    wait_for(lambda: HOSTILE in driver.find_element("id", "log").text, timeout=WAIT, what="the log")
    assert no_alert(driver)
    assert (
        driver.execute_script("return document.querySelectorAll('#log *').length") == 0
    )  # text, no elements
    driver.save_screenshot(str(shots / "run-epoch-1.png"))
    training.epoch(2)
    wait_for(lambda: points(driver, "epoch:loss") == 2, timeout=WAIT, what="the curve to grow")
    assert attribute(driver, "#training", "data-epochs") == "2"
    assert "epoch 2 of 3" in driver.find_element("id", "progress").text
    driver.save_screenshot(str(shots / "run-epoch-2.png"))
    training.epoch(3)
    wait_for(lambda: attribute(driver, "body", "data-final") == "true", timeout=WAIT, what="the run's end")
    wait_for(lambda: driver.find_element("id", "artifacts").is_displayed(), timeout=WAIT, what="artifacts")
    assert points(driver, "epoch:loss") == 3
    driver.save_screenshot(str(shots / "run-finished.png"))

    row = driver.find_element("css selector", '#artifacts tr[data-path="outputs/model.bin"]')
    shown_checksum = row.find_element("css selector", "td.checksum").text
    row.find_element("css selector", "a").click()
    saved = downloads / "model.bin"
    wait_for(
        lambda: saved.exists() and not list(downloads.glob("*.crdownload")), timeout=WAIT, what="download"
    )
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == shown_checksum

    driver.get(f"{base}/?job=live")
    assert training.run in driver.find_element("id", "runs").text
    driver.save_screenshot(str(shots / "runs.png"))
    assert no_alert(driver)


def test_a_finished_run_s_log_stays_text(site: tuple[Any, str, Path], start_training: StartTraining) -> None:
    driver, base, _ = site
    training = start_training("quick", waiting=False)
    wait_for_state(training.run, "succeeded")
    driver.get(f"{base}/runs/{training.run}")
    wait_for(lambda: HOSTILE in driver.find_element("id", "log").text, timeout=WAIT, what="the log")
    assert no_alert(driver)
    assert driver.execute_script("return window.__xss === undefined && document.scripts.length") == 2


def sample(time: float, cpu: float, utilization: float) -> str:
    gpu = {
        "index": 0,
        "uuid": "GPU-213ca9e0-6a1f-4b4e-9a43-1d2c3b4a5f60",
        "name": "NVIDIA H200",
        "utilization": utilization,
        "memoryUsed": 80123.0,
        "memoryTotal": 143771.0,
    }
    line = {"time": time, "cpu": cpu, "memory": 3 * 2**30, "processes": 4, "gpus": [gpu]}
    return json.dumps(line) + "\n"


def test_system_charts_grow_with_the_agent_s_samples(
    site: tuple[Any, str, Path], start_training: StartTraining, home: Path
) -> None:
    """The samples an agent writes in a container (here written as it would, H200 readings included)."""
    driver, base, _ = site
    training = start_training("sampled", epochs=1)
    wait_for_state(training.run, "running")
    samples = home / "runs" / training.run / "outputs" / "telemetry" / "system.jsonl"
    samples.parent.mkdir(parents=True, exist_ok=True)
    samples.write_text("".join(sample(1000.0 + 5 * n, 95.0 + n, 90.0 + n) for n in range(3)))
    driver.get(f"{base}/runs/{training.run}")
    wait_for(lambda: points(driver, "gpu") == 3, timeout=WAIT, what="the GPU chart")
    with samples.open("a") as more:
        more.write(sample(1015.0, 120.0, 99.0))
    wait_for(lambda: points(driver, "gpu") == 4, timeout=WAIT, what="the GPU chart to grow")
    assert points(driver, "cpu") == 4 and points(driver, "memory") == 4 and points(driver, "gpu-memory") == 4
    driver.save_screenshot(str(screenshots_dir() / "run-system.png"))
    training.epoch(1)
    wait_for_state(training.run, "succeeded")
