"""Failures of the service itself (not refusals: those are DomainErrors with a prompt)."""

from __future__ import annotations


class ServiceUnavailable(Exception):
    """Storage failed; the adapter tells the person to try again. Nothing was stored."""


def is_db_error(err: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(err, OperationalError | DBAPIError | ConnectionError | TimeoutError)
