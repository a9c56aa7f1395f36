"""Refusals the user sees. Each code names a template in prompts/<lang>/errors/<code>.j2."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A clear, private refusal. Nothing was changed when this is raised."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class FormErrors(DomainError):
    """Field-level validation failures of a submitted form: field name -> error code."""

    def __init__(self, fields: dict[str, str], **params: Any) -> None:
        super().__init__("invalid_form", **params)
        self.fields = fields
