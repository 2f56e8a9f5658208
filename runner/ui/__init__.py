"""`runner ui`: a read-only web dashboard over the service layer (FastAPI, Jinja2, Chart.js vendored).

app.py      the routes: pages and their JSON, downloads; nothing in it changes a run or a schedule
views.py    records, telemetry, artifacts and schedules as the pages' data (pure)
access.py   who may read: loopback only without a token; a token everywhere else
templates/  the pages (Jinja2, autoescaped); static/ their script, style and Chart.js

Nothing from a job (its logs, metric names, file names) is ever rendered as HTML: templates escape it,
the scripts set it as text, and downloads are sent as attachments.
"""
