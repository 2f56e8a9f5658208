"""Scheduled jobs: manifests with spec.schedule, run on this machine or as CronJobs on a cluster.

base.py          the Schedules protocol the `runner schedule` commands use; what apply says (AppliedSchedule)
local.py         LocalSchedules: this machine's schedules, kept in the run records
cluster.py       ClusterSchedules: a namespace's CronJobs (runner.backends.kubernetes.cronjobs)
slots.py         the pure decisions about this machine's slots: which is due, what concurrency makes of it
scheduler.py     the loop behind `runner scheduler` that starts this machine's due slots
systemd_unit.py  `runner scheduler install`: the systemd user unit that keeps that loop running

Both kinds of schedule are shown as the one ScheduleView (runner.records.schedule_view).
"""

from runner.service.schedules.base import AppliedSchedule, ApplyResult, Schedules, require_schedule

__all__ = ["AppliedSchedule", "ApplyResult", "Schedules", "require_schedule"]
