"""What the real API server does to an object before storing it: defaulting, create/update strategies and
validation, for the types this fake serves. Only the rules a batch runner can trip over are here (names,
labels, containers, restart policies, quantities, cron schedules, immutable fields); a real server checks
far more. Validation failures are `Cause`s, which the server answers with a 422 `Invalid` Status.
"""

from __future__ import annotations

import base64
import copy
import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.support.apiserver.resources import ResourceType

SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{SUBDOMAIN}')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    f"'{LABEL}')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
JOB_LABELS = (
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
    "controller-uid",
    "job-name",
)
STANDARD_TOLERATIONS = [
    {
        "key": f"node.kubernetes.io/{taint}",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }
    for taint in ("not-ready", "unreachable")
]


@dataclass(frozen=True)
class Cause:
    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueForbidden, ...
    field: str
    message: str

    def render(self) -> str:
        return f"{self.field}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def invalid(field: str, value: Any, detail: str) -> Cause:
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    return Cause("FieldValueInvalid", field, f"Invalid value: {shown}: {detail}")


def required(field: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", field, f"Required value: {detail}" if detail else "Required value")


def unsupported(field: str, value: Any, supported: list[str]) -> Cause:
    choices = ", ".join(f'"{s}"' for s in supported)
    return Cause(
        "FieldValueNotSupported", field, f'Unsupported value: "{value}": supported values: {choices}'
    )


def forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", field, f"Forbidden: {detail}")


def parse_quantity(text: Any) -> Decimal | None:
    match = QUANTITY.match(str(text).strip())
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in {"e", "E"}:
            return Decimal(number) * (Decimal(10) ** int(suffix[1:]))
        return Decimal(number) * SUFFIXES[suffix]
    except (InvalidOperation, KeyError):
        return None


# --- names, labels ---------------------------------------------------------------------------------------


def name_causes(rt: ResourceType, name: str) -> list[Cause]:
    field = "metadata.name"
    if rt.plural in {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}:
        if name in {".", ".."} or "/" in name or "%" in name:
            return [invalid(field, name, "may not contain '/' or '%', nor be '.' or '..'")]
        return []
    if rt.plural == "namespaces":
        if len(name) > 63:
            return [invalid(field, name, "must be no more than 63 characters")]
        return [] if re.fullmatch(LABEL, name) else [invalid(field, name, LABEL_MSG)]
    if len(name) > 253:
        return [invalid(field, name, "must be no more than 253 characters")]
    if not re.fullmatch(SUBDOMAIN, name):
        return [invalid(field, name, SUBDOMAIN_MSG)]
    limit = {"jobs": 63, "cronjobs": 52}.get(rt.plural)
    if limit and len(name) > limit:
        return [invalid(field, name, f"must be no more than {limit} characters")]
    return []


def qualified_name_causes(field: str, key: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    causes = []
    if "/" in key and (not prefix or len(prefix) > 253 or not re.fullmatch(SUBDOMAIN, prefix)):
        causes.append(invalid(field, key, "prefix part " + SUBDOMAIN_MSG))
    if not name or len(name) > 63 or not re.fullmatch(QUALIFIED_NAME, name):
        causes.append(
            invalid(
                field,
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                f"validation is '{QUALIFIED_NAME}') and be no more than 63 characters",
            )
        )
    return causes


def metadata_causes(meta: dict[str, Any], base: str = "metadata") -> list[Cause]:
    causes: list[Cause] = []
    for key, value in (meta.get("labels") or {}).items():
        causes += qualified_name_causes(f"{base}.labels", key)
        if not isinstance(value, str):
            causes.append(invalid(f"{base}.labels", value, "label values must be strings"))
        elif len(value) > 63 or not re.fullmatch(rf"({QUALIFIED_NAME})?", value):
            causes.append(invalid(f"{base}.labels", value, LABEL_VALUE_MSG))
    for key, value in (meta.get("annotations") or {}).items():
        causes += qualified_name_causes(f"{base}.annotations", key)
        if not isinstance(value, str):
            causes.append(invalid(f"{base}.annotations", value, "annotation values must be strings"))
    return causes


# --- defaulting ------------------------------------------------------------------------------------------


def _default_container(container: dict[str, Any]) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    last = image.rsplit("/", 1)[-1]
    untagged = ":" not in last and "@" not in image
    always = untagged or last.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if always else "IfNotPresent")
    resources = container.setdefault("resources", {})
    limits = resources.get("limits") or {}
    if limits:
        requests = resources.setdefault("requests", {})
        for name, quantity in limits.items():
            requests.setdefault(name, quantity)


def default_pod_spec(spec: dict[str, Any], *, template: bool) -> None:
    if not template:
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("serviceAccountName", "default")
        spec["serviceAccount"] = spec["serviceAccountName"]
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tolerations = spec.setdefault("tolerations", [])
        for toleration in STANDARD_TOLERATIONS:
            if not any(t.get("key") == toleration["key"] for t in tolerations):
                tolerations.append(copy.deepcopy(toleration))
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)


def default_job_spec(spec: dict[str, Any]) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault(
        "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    )
    spec.setdefault("manualSelector", None)
    if spec["manualSelector"] is None:
        del spec["manualSelector"]
    template = spec.setdefault("template", {})
    default_pod_spec(template.setdefault("spec", {}), template=True)


def qos_class(spec: dict[str, Any]) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        all(
            lim.get(r) is not None and parse_quantity(lim.get(r)) == parse_quantity(req.get(r))
            for r in ("cpu", "memory")
        )
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def default(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Defaulting, applied on every write as the real server does on decoding."""
    spec = obj.get("spec")
    if rt.plural == "pods" and isinstance(spec, dict):
        default_pod_spec(spec, template=False)
    elif rt.plural == "jobs" and isinstance(spec, dict):
        default_job_spec(spec)
    elif rt.plural == "cronjobs" and isinstance(spec, dict):
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_spec = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
        default_pod_spec(job_spec.setdefault("template", {}).setdefault("spec", {}), template=True)
    elif rt.plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = obj[
            "metadata"
        ]["name"]
    elif rt.plural == "secrets":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) if string_data else obj.get("data")
        for key, value in string_data.items():
            assert data is not None
            data[key] = base64.b64encode(str(value).encode()).decode()


def prepare_create(rt: ResourceType, obj: dict[str, Any], uid: str) -> None:
    """The create strategies: status starts empty (pods Pending, namespaces Active), jobs get a selector."""
    name = obj["metadata"]["name"]
    if rt.plural == "jobs":
        obj["status"] = {}
        spec = obj.setdefault("spec", {})
        if not spec.get("manualSelector"):
            if spec.get("selector") is None:
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
            labels.update(dict(zip(JOB_LABELS, (uid, name, uid, name), strict=True)))
    elif rt.plural == "cronjobs":
        obj["status"] = {}
    elif rt.plural == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
    elif rt.plural == "namespaces":
        obj["status"] = {"phase": "Active"}


# --- validation ------------------------------------------------------------------------------------------


def _resources_causes(resources: dict[str, Any], base: str) -> list[Cause]:
    causes = []
    parsed: dict[str, dict[str, Decimal]] = {}
    for kind in ("limits", "requests"):
        for name, value in (resources.get(kind) or {}).items():
            quantity = parse_quantity(value)
            if quantity is None:
                causes.append(
                    invalid(
                        f"{base}.{kind}[{name}]",
                        value,
                        "must match the regex for a quantity: '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )
                )
                continue
            if quantity < 0:
                causes.append(invalid(f"{base}.{kind}[{name}]", value, "must be greater than or equal to 0"))
            if "/" in name and not name.startswith("requests.") and quantity != quantity.to_integral_value():
                causes.append(invalid(f"{base}.{kind}[{name}]", value, "must be an integer"))
            parsed.setdefault(kind, {})[name] = quantity
    limits, requests = parsed.get("limits", {}), parsed.get("requests", {})
    for name, request in requests.items():
        limit = limits.get(name)
        extended = "/" in name and not name.startswith("kubernetes.io/")
        if extended and limit is None:
            causes.append(forbidden(f"{base}.limits", "Limit must be set for non overcommitable resources"))
        elif extended and limit != request:
            causes.append(
                invalid(f"{base}.requests[{name}]", str(request), f"must be equal to {name} limit of {limit}")
            )
        elif limit is not None and request > limit:
            causes.append(
                invalid(
                    f"{base}.requests", str(request), f"must be less than or equal to {name} limit of {limit}"
                )
            )
    return causes


def pod_spec_causes(spec: Any, base: str, *, restart_policies: tuple[str, ...]) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required(base)]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(required(f"{base}.containers"))
    seen: set[str] = set()
    for index, container in enumerate(containers or []):
        field = f"{base}.containers[{index}]"
        if not isinstance(container, dict):
            causes.append(invalid(field, container, "must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append(required(f"{field}.name"))
        elif not re.fullmatch(LABEL, str(name)) or len(str(name)) > 63:
            causes.append(invalid(f"{field}.name", name, LABEL_MSG))
        elif name in seen:
            causes.append(Cause("FieldValueDuplicate", f"{field}.name", f'Duplicate value: "{name}"'))
        seen.add(str(name))
        if not container.get("image"):
            causes.append(required(f"{field}.image"))
        causes += _resources_causes(container.get("resources") or {}, f"{field}.resources")
    policy = spec.get("restartPolicy")
    if policy is None:
        choices = ", ".join(f'"{p}"' for p in restart_policies)
        causes.append(required(f"{base}.restartPolicy", f"valid values: {choices}"))
    elif policy not in restart_policies:
        causes.append(unsupported(f"{base}.restartPolicy", policy, list(restart_policies)))
    return causes


def _non_negative(spec: dict[str, Any], base: str, *fields: str) -> list[Cause]:
    causes = []
    for field in fields:
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(invalid(f"{base}.{field}", value, "must be greater than or equal to 0"))
    return causes


def job_spec_causes(spec: Any, base: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required(base)]
    causes = _non_negative(
        spec, base, "parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"
    )
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        causes.append(invalid(f"{base}.activeDeadlineSeconds", deadline, "must be greater than 0"))
    if spec.get("completionMode") not in (None, "NonIndexed", "Indexed"):
        causes.append(
            unsupported(f"{base}.completionMode", spec["completionMode"], ["NonIndexed", "Indexed"])
        )
    template = spec.get("template") or {}
    causes += metadata_causes(template.get("metadata") or {}, f"{base}.template.metadata")
    causes += pod_spec_causes(
        template.get("spec"), f"{base}.template.spec", restart_policies=("OnFailure", "Never")
    )
    return causes


def cron_causes(schedule: Any, time_zone: Any) -> list[Cause]:
    causes = []
    if not schedule:
        causes.append(required("spec.schedule"))
    elif re.match(r"^\s*(CRON_)?TZ=", str(schedule)):
        causes.append(
            invalid(
                "spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
        )
    else:
        text = str(schedule).strip()
        fields = text.split()
        if text.startswith("@"):
            if text not in CRON_DESCRIPTORS and not re.fullmatch(r"@every \S+", text):
                causes.append(invalid("spec.schedule", schedule, f"unrecognized descriptor: {text}"))
        elif len(fields) != 5:
            listed = " ".join(fields)
            causes.append(
                invalid(
                    "spec.schedule", schedule, f"expected exactly 5 fields, found {len(fields)}: [{listed}]"
                )
            )
        elif any(not re.fullmatch(r"[\w*/,\-?]+", f) for f in fields):
            causes.append(invalid("spec.schedule", schedule, "failed to parse cron fields"))
    if time_zone is not None:
        try:
            zoneinfo.ZoneInfo(str(time_zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            causes.append(invalid("spec.timeZone", time_zone, f"unknown time zone {time_zone}"))
    return causes


POD_MUTABLE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _pod_spec_without_mutables(spec: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(spec)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates"):
        stripped.pop(key, None)
    for key in ("containers", "initContainers"):
        for container in stripped.get(key) or []:
            if isinstance(container, dict):
                container.pop("image", None)
    return stripped


def update_causes(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Fields the real server refuses to change on an update."""
    causes: list[Cause] = []
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if rt.plural == "jobs":
        mutable_template = old_spec.get("suspend") and not (old.get("status") or {}).get("startTime")
        for field in ("selector", "completionMode", "podFailurePolicy", "template"):
            if field == "template" and mutable_template:
                continue
            if new_spec.get(field) != old_spec.get(field):
                causes.append(invalid(f"spec.{field}", new_spec.get(field), "field is immutable"))
    elif rt.plural == "pods" and _pod_spec_without_mutables(new_spec) != _pod_spec_without_mutables(old_spec):
        causes.append(forbidden("spec", POD_MUTABLE_MSG))
    return causes


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    meta = obj.get("metadata") or {}
    causes = name_causes(rt, str(meta.get("name", ""))) if old is None else []
    causes += metadata_causes(meta)
    spec = obj.get("spec")
    if rt.plural == "pods":
        causes += pod_spec_causes(spec, "spec", restart_policies=("Always", "OnFailure", "Never"))
    elif rt.plural == "jobs":
        causes += job_spec_causes(spec, "spec")
        if old is None and isinstance(spec, dict) and not spec.get("manualSelector"):
            selector = spec.get("selector") or {}
            uid = meta.get("uid")
            if selector != {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}:
                causes.append(invalid("spec.selector", selector, "`selector` not auto-generated"))
    elif rt.plural == "cronjobs":
        spec = spec if isinstance(spec, dict) else {}
        causes += cron_causes(spec.get("schedule"), spec.get("timeZone"))
        if spec.get("concurrencyPolicy") not in ("Allow", "Forbid", "Replace"):
            causes.append(
                unsupported(
                    "spec.concurrencyPolicy", spec.get("concurrencyPolicy"), ["Allow", "Forbid", "Replace"]
                )
            )
        causes += _non_negative(
            spec, "spec", "startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"
        )
        job_template = spec.get("jobTemplate") or {}
        causes += metadata_causes(job_template.get("metadata") or {}, "spec.jobTemplate.metadata")
        causes += job_spec_causes(job_template.get("spec"), "spec.jobTemplate.spec")
    elif rt.plural == "events" and not obj.get("involvedObject"):
        causes.append(required("involvedObject"))
    if old is not None:
        causes += update_causes(rt, obj, old)
    return causes
