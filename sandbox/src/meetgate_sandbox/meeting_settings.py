"""Switches for meeting behaviours the real service shows in several forms, or that are unconfirmed
(docs/sandbox.md, "Switches for behaviours seen in several forms").

Set through ``PUT /_sandbox/settings`` next to ``policyDelaySeconds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: the 403 an app-only call gets without a policy, per variant seen in the field
POLICY_ERROR_VARIANTS = ("forbidden", "general", "suffix", "legacy")
#: what a UPN in ``/users/{userId}/onlineMeetings`` does: 404 NotFound, an empty 403, or resolve it
UPN_IN_PATH_VARIANTS = ("notFound", "forbiddenEmpty", "resolve")
#: ``GET /admin/teams/userConfigurations/{id}``: OData entity, or wrapped in ``value`` as the docs show
USER_CONFIGURATION_SHAPES = ("entity", "wrapped")
#: an attendee without ``upn``: 500 like the real service, or accepted
ATTENDEE_WITHOUT_UPN = ("error", "accept")
#: a second create with the same event ``transactionId``: a second event, or the first one back (the
#: real service's dedupe window and answer are undocumented)
TRANSACTION_ID_DUPLICATE = ("create", "returnExisting")
#: every key :meth:`MeetingSandboxSettings.update` understands
SETTING_KEYS = (
    "policyErrorVariant",
    "upnInPath",
    "userConfigurationShape",
    "attendeeWithoutUpn",
    "transactionIdDuplicate",
    "mailboxScopeDelaySeconds",
)


@dataclass
class MeetingSandboxSettings:
    """Switches for behaviours the real service shows in several forms, or that are unconfirmed."""

    policy_error_variant: str = "forbidden"
    upn_in_path: str = "notFound"
    user_configuration_shape: str = "entity"
    attendee_without_upn: str = "error"
    transaction_id_duplicate: str = "create"
    #: Exchange RBAC for Applications' permission cache (documented: 30 minutes to 2 hours)
    mailbox_scope_delay_seconds: float = 0.0

    def update(self, data: Mapping[str, Any]) -> None:
        """Apply ``policyErrorVariant`` / ``upnInPath`` / ``userConfigurationShape`` from a settings body."""
        for key, attribute, allowed in (
            ("policyErrorVariant", "policy_error_variant", POLICY_ERROR_VARIANTS),
            ("upnInPath", "upn_in_path", UPN_IN_PATH_VARIANTS),
            ("userConfigurationShape", "user_configuration_shape", USER_CONFIGURATION_SHAPES),
            ("attendeeWithoutUpn", "attendee_without_upn", ATTENDEE_WITHOUT_UPN),
            ("transactionIdDuplicate", "transaction_id_duplicate", TRANSACTION_ID_DUPLICATE),
        ):
            if key in data:
                value = data[key]
                if value not in allowed:
                    raise ValueError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
                setattr(self, attribute, value)
        if "mailboxScopeDelaySeconds" in data:
            delay = data["mailboxScopeDelaySeconds"]
            if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 7200:
                raise ValueError(
                    f"mailboxScopeDelaySeconds must be a number of seconds from 0 to 7200, not {delay!r}"
                )
            self.mailbox_scope_delay_seconds = float(delay)

    def to_json(self) -> dict[str, Any]:
        return {
            "policyErrorVariant": self.policy_error_variant,
            "upnInPath": self.upn_in_path,
            "userConfigurationShape": self.user_configuration_shape,
            "attendeeWithoutUpn": self.attendee_without_upn,
            "transactionIdDuplicate": self.transaction_id_duplicate,
            "mailboxScopeDelaySeconds": self.mailbox_scope_delay_seconds,
        }

    @property
    def upn_required(self) -> bool:
        return self.attendee_without_upn == "error"
