"""The shared job plumbing in jobs/common/kit.py, tested in-process (no training)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from .formats import ARTIFACTS

pytest.importorskip("matplotlib")


def test_parse_formats_always_keeps_keras_and_h5(job_modules: Path) -> None:
    from common import kit

    assert kit.parse_formats("") == ["keras", "h5"]
    assert kit.parse_formats("onnx") == ["keras", "h5", "onnx"]
    assert kit.parse_formats(" ONNX, saved_model ,keras") == ["keras", "h5", "savedmodel", "onnx"]
    assert kit.parse_formats(["h5", "savedmodel"]) == ["keras", "h5", "savedmodel"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown model format 'tflite'"):
        kit.parse_formats("keras,tflite")


def test_artifact_names_agree_with_the_test_helpers(job_modules: Path) -> None:
    from common import kit

    assert dict(ARTIFACTS) == kit.ARTIFACTS


def test_base_parser_defaults_and_errors(job_modules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from common import kit

    parser = kit.base_parser("demo", epochs=3, batch_size=8)
    args = parser.parse_args([])
    assert (args.epochs, args.batch_size, args.seed, args.outputs) == (3, 8, 42, None)
    assert args.formats == ["keras", "h5"]
    assert parser.parse_args(["--formats", "keras,h5,savedmodel,onnx"]).formats == list(ARTIFACTS)
    for bad in (["--epochs", "0"], ["--formats", "pickle"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(bad)
        assert exit_info.value.code == 2
    assert "unknown model format 'pickle'" in capsys.readouterr().err


def test_outputs_dir(job_modules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from common import kit

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNNER_OUTPUTS", raising=False)
    assert kit.outputs_dir() == Path("outputs") and (tmp_path / "outputs").is_dir()
    monkeypatch.setenv("RUNNER_OUTPUTS", str(tmp_path / "runner" / "out"))
    assert kit.outputs_dir() == tmp_path / "runner" / "out" and (tmp_path / "runner" / "out").is_dir()
    assert kit.outputs_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_inputs_come_from_runner_input_variables(job_modules: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from common import kit

    assert kit.input_env_var("cells") == "RUNNER_INPUT_CELLS"
    assert kit.input_env_var("raw-images") == "RUNNER_INPUT_RAW_IMAGES"
    monkeypatch.delenv("RUNNER_INPUT_RAW_IMAGES", raising=False)
    assert kit.input_dir("raw-images") is None
    monkeypatch.setenv("RUNNER_INPUT_RAW_IMAGES", "/data/raw")
    assert kit.input_dir("raw-images") == Path("/data/raw")


def test_metrics_json_is_strict_json(job_modules: Path, tmp_path: Path) -> None:
    import numpy as np
    from common import kit

    kit.write_metrics(tmp_path, {"loss": np.float32(0.5), "curve": np.arange(3), "bad": math.nan})
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text
    assert json.loads(text) == {"loss": 0.5, "curve": [0, 1, 2], "bad": None}


def test_run_reports_job_errors_without_a_traceback(
    job_modules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from common import kit

    def failing() -> int:
        raise kit.JobError("the data is not there")

    assert kit.run(failing) == 2
    assert kit.run(lambda: 0) == 0
    assert capsys.readouterr().err == "ERROR: the data is not there\n"


def test_fraction_and_split_sizes(job_modules: Path) -> None:
    from common import kit

    assert kit.fraction("0.25") == 0.25
    for bad in ("0", "1", "-0.1", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            kit.fraction(bad)
    assert kit.split_sizes(600, 0.1) == (540, 60)
    assert kit.split_sizes(1437, 0.1) == (1293, 144)


@pytest.mark.tensorflow
def test_split_sizes_match_keras(job_modules: Path) -> None:
    pytest.importorskip("tensorflow")
    # Keras's own splitting code (internal, hence the skip should it ever move).
    slicing = pytest.importorskip("keras.src.trainers.data_adapters.array_slicing")
    import numpy as np
    from common import kit

    for n, split in [(600, 0.1), (1437, 0.1), (353, 0.2), (7, 0.3)]:
        train, val = slicing.train_validation_split((np.arange(n),), validation_split=split)
        assert kit.split_sizes(n, split) == (len(train[0]), len(val[0]))
