"""The domain's refusals: one hierarchy, mapped to HTTP status codes once (api/errors.py)."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; the message says why, naming the field or order."""


class InvalidDocument(DomainError, ValueError):
    """The document cannot be registered; the message names the field: 400."""


class OrderError(DomainError):
    """A command the order's state does not allow."""


class OrderClosed(OrderError):
    """The order is CANCELLED: every write answers 409."""


class UnknownOrder(OrderError):
    """No such order is registered: 404."""


class AssigneeTaken(OrderError):
    """force=false and the order already has an assignee: 400."""


class InvalidCommand(OrderError):
    """The command names something the order does not have: 400."""


class OrderArchived(OrderError):
    """Some of the order's facts are archived (`pickpack archive`): a command, which
    decides on the order's whole history, is refused with 409 naming the cut-off."""


class CorrectionRefused(OrderError):
    """A correction would take a total below zero, or reuses a correctionId with other
    content: 409; the message names the field."""


class ScanRefused(DomainError):
    """A scan the ledger refuses: its eventId was recorded with other content, or its
    order is CANCELLED: 409; the message names the field."""
