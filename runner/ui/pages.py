"""The HTML pages: runs, one run, schedules. Their live parts are filled by static/app.js from api.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from runner.ui import views
from runner.ui.context import Dashboard, dashboard

router = APIRouter()
Board = Annotated[Dashboard, Depends(dashboard)]


@router.get("/")
def runs_page(request: Request, board: Board, job: str = "", state: str = "") -> Response:
    context = {
        "runs": board.run_rows(job, state),
        "job": job,
        "state": state,
        "states": views.STATES,
        "page": "runs",
    }
    return board.templates.TemplateResponse(request, "runs.html", context)


@router.get("/runs/{run_id}")
def run_page(request: Request, board: Board, run_id: str) -> Response:
    runs = board.runs()
    record = runs.get(run_id)
    detail = views.run_detail(record, board.now(), runs.location(record))
    return board.templates.TemplateResponse(request, "run.html", {"run": detail, "page": "run"})


@router.get("/schedules")
def schedules_page(request: Request, board: Board) -> Response:
    context = {"schedules": board.schedule_rows(), "page": "schedules"}
    return board.templates.TemplateResponse(request, "schedules.html", context)
