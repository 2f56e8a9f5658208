"""spec.notify: a webhook told when a run ends (a short Slack-compatible JSON summary).

    notify:
      webhook: {fromEnv: SLACK_WEBHOOK}                         # or {secretKeyRef: {name: slack, key: url}}
      on: [failed, succeeded]                                   # the default

The URL is a secret (whoever holds it may post to the channel): it is a reference, as in spec.env, and
never a value; the reference is stored with the run, the URL never is. `on` says which ends are told:
succeeded; failed (failed, timed out or lost); cancelled.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from runner.spec.base import ManifestModel
from runner.spec.env import EnvFrom

NotifyEvent = Literal["succeeded", "failed", "cancelled"]
DEFAULT_EVENTS: tuple[NotifyEvent, ...] = ("failed", "succeeded")


def _a_reference(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            "the webhook's URL is a secret: give a reference, not the URL, like "
            "{fromEnv: SLACK_WEBHOOK} or {secretKeyRef: {name: slack, key: url}}"
        )
    return value


class Notify(ManifestModel):
    webhook: Annotated[EnvFrom, BeforeValidator(_a_reference)]
    on: list[NotifyEvent] = Field(default_factory=lambda: list(DEFAULT_EVENTS), min_length=1)

    @field_validator("on")
    @classmethod
    def _unique(cls, value: list[NotifyEvent]) -> list[NotifyEvent]:
        if len(set(value)) != len(value):
            raise ValueError(f"each event once, got {value}")
        return value

    def to_env(self) -> str:
        """The agent's RUNNER_NOTIFY_ON value: "failed,succeeded"."""
        return ",".join(self.on)
