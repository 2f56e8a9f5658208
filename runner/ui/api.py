"""The JSON the pages poll, and artifact downloads (checksum verified, always as attachments)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from runner.errors import NotFoundError
from runner.service.metrics import log_tail, read_telemetry
from runner.ui import views
from runner.ui.context import Dashboard, dashboard

router = APIRouter()
Board = Annotated[Dashboard, Depends(dashboard)]


@router.get("/api/runs")
def runs_api(board: Board, job: str = "", state: str = "") -> dict[str, Any]:
    return {"runs": board.run_rows(job, state)}


@router.get("/api/runs/{run_id}")
def run_api(board: Board, run_id: str) -> dict[str, Any]:
    runs = board.runs()
    record = runs.get(run_id)
    return views.run_detail(record, board.now(), runs.location(record))


@router.get("/api/runs/{run_id}/log")
def log_api(board: Board, run_id: str) -> dict[str, Any]:
    runs = board.runs()
    record = runs.get(run_id)
    try:
        text, cut = log_tail(runs, record)
    except NotFoundError:  # no attempt has logged yet
        text, cut = "", False
    return {"text": text, "cut": cut, "state": record.state.value, "final": record.state.final}


@router.get("/api/runs/{run_id}/metrics")
def metrics_api(board: Board, run_id: str) -> dict[str, Any]:
    runs = board.runs()
    telemetry = read_telemetry(runs, runs.get(run_id))
    return {
        "state": telemetry.record.state.value,
        "final": telemetry.record.state.final,
        "training": views.training_view(telemetry.training),
        "system": views.system_view(telemetry.system),
    }


@router.get("/api/runs/{run_id}/artifacts")
def artifacts_api(board: Board, run_id: str) -> dict[str, Any]:
    runs = board.runs()
    record, files = runs.artifacts(run_id)
    refused = [{"path": path, "reason": reason} for path, reason in runs.refused(record)]
    return {"files": views.artifact_rows(record.id, files), "refused": refused}


@router.get("/api/schedules")
def schedules_api(board: Board) -> dict[str, Any]:
    return {"schedules": board.schedule_rows()}


@router.get("/runs/{run_id}/files/{path:path}")
def download(board: Board, run_id: str, path: str) -> Response:
    scratch = Path(tempfile.mkdtemp(prefix="runner-ui-"))
    try:
        _, (entry,) = board.runs().download(run_id, scratch, only=path)  # its checksum verified
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FileResponse(
        scratch / entry.path,
        media_type="application/octet-stream",  # never shown as a page, whatever the job wrote
        filename=PurePosixPath(entry.path).name,
        headers={"X-Checksum-Sha256": entry.sha256},
        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
    )
