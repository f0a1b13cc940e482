"""meetgate's one exception root. Everything meetgate raises at its callers is a :class:`MeetgateError`
carrying ``remedy`` — what to do about it, or None — so one ``except MeetgateError`` catches every
failure of ours, and anything else is a bug. Each class keeps the built-in base it had (ValueError,
RuntimeError, PermissionError), so older ``except ValueError`` code still works.

::

    MeetgateError                        .remedy
     ├─ ConfigError                      meetgate.config: a setting is missing, unreadable or invalid
     ├─ CertificateError                 meetgate.certificates: a key or certificate file
     ├─ GraphError                       meetgate.graph.errors: the Graph client's own tree
     │   (CredentialError, AuthenticationError, AuthorizationError, AccessPolicyMissing,
     │    NotFoundError, ThrottledError, ServiceError, TransportError, MeetingRuleError, …)
     ├─ StoreError                       meetgate.store.repository: the store refused or is unreachable
     │   ├─ ConsumerExists
     │   └─ ConsumerNotFound
     ├─ ConsumerError                    meetgate.gateway.consumers: an API-key consumer request
     ├─ RegistrationError                meetgate.admin.registration: the app registration (steps 1–2)
     ├─ CredentialChangeError            meetgate.admin.credentials: a certificate/secret change (step 3)
     ├─ SignInError                      meetgate.admin.signin: the admin may not do this
     ├─ PolicyError                      meetgate.admin.policy.model: the desired policy state (steps 4–5)
     ├─ BulkFileError                    meetgate.admin.bulk.rows: a bulk file as a whole
     ├─ JournalError                     meetgate.admin.bulk.journal: a bulk run's journal
     ├─ MonitorError                     meetgate.admin.monitoring.model: monitoring input (step 7)
     │   └─ SinkError                    an alert sink could not deliver
     └─ DemoFailed                       meetgate_sandbox.demo: a demo step did not behave as the runbook says

The sandbox's errors (``SandboxStartError``, ``SandboxControlError``, ``StateError``,
``SettingsError``) sit under the root too, so its CLI commands fail the same way.

This module imports nothing: every layer, the Graph client included, may derive from it.
"""

from __future__ import annotations


class MeetgateError(Exception):
    """Base of every error meetgate raises; ``remedy`` says what to do (None when nothing to add)."""

    remedy: str | None = None

    def __init__(self, message: str = "", remedy: str | None = None) -> None:
        super().__init__(message)
        self.remedy = remedy


__all__ = ["MeetgateError"]
