"""Pure Job-controller decisions: pod backoff, podFailurePolicy matching, and the wording of outcomes.

These follow pkg/controller/job in Kubernetes 1.31: a failed pod is recreated after 10s, 20s, 40s, ...
(capped at six minutes) counted from the last failure; podFailurePolicy rules are checked in order and
the first match decides (FailJob, Ignore, Count); a rule on exit codes never matches exit code 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]

BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0

BACKOFF_LIMIT = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE = ("DeadlineExceeded", "Job was active longer than specified deadline")
COMPLETIONS = ("CompletionsReached", "Reached expected number of succeeded pods")


def backoff_seconds(failures: int) -> float:
    """How long after the last failed pod the next one may be created, after `failures` in a row."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_BASE * 2.0 ** (failures - 1), BACKOFF_MAX))


def _exit_codes_match(rule: Mapping[str, Any], pod: Obj) -> tuple[str, int] | None:
    """The (container, exit code) an onExitCodes rule matches in pod, or None."""
    wanted = rule["onExitCodes"]
    name = wanted.get("containerName")
    values = set(wanted.get("values") or [])
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if name and status.get("name") != name:
            continue
        code = ((status.get("state") or {}).get("terminated") or {}).get("exitCode")
        if code is None or code == 0:
            continue
        inside = code in values
        if inside == (wanted.get("operator") == "In"):
            return str(status.get("name")), int(code)
    return None


def _conditions_match(rule: Mapping[str, Any], pod: Obj) -> str | None:
    conditions = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    for pattern in rule.get("onPodConditions") or []:
        found = conditions.get(pattern.get("type"))
        if found is not None and found.get("status") == pattern.get("status", "True"):
            return str(pattern.get("type"))
    return None


def failure_action(policy: Mapping[str, Any] | None, pod: Obj) -> tuple[str, str]:
    """What a Failed pod means for its Job: ("Count"|"Ignore"|"FailJob", message for FailJob)."""
    meta = pod["metadata"]
    who = f"{meta.get('namespace')}/{meta['name']}"
    for index, rule in enumerate((policy or {}).get("rules") or []):
        action = str(rule.get("action"))
        if rule.get("onExitCodes"):
            matched = _exit_codes_match(rule, pod)
            if matched is not None:
                container, code = matched
                message = (
                    f"Container {container} for pod {who} failed with exit code {code} matching {action} "
                    f"rule at index {index}"
                )
                return action, message
        elif rule.get("onPodConditions"):
            kind = _conditions_match(rule, pod)
            if kind is not None:
                return action, f"Pod {who} has condition {kind} matching {action} rule at index {index}"
    return "Count", ""
