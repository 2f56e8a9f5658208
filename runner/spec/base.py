"""The base of every manifest model: frozen, unknown keys refused, an empty value taken as missing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class ManifestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        """A key with an empty value (``env:`` and nothing after it) takes its default, like a missing one.

        Required fields keep their null, so that they are reported as such.
        """
        if not isinstance(data, dict):
            return data
        optional: set[str] = set()
        for name, info in cls.model_fields.items():
            if not info.is_required():
                optional.update((name, info.alias or name))
        return {key: value for key, value in data.items() if value is not None or key not in optional}
