"""The calendar plane: Exchange Online RBAC for Applications as desired state (``meetgate mailbox-scope``).

``model`` (desired state, what Exchange holds, the union rule), ``loader`` (the policy file's
``[mailbox_scope]``), ``planner`` (the steps), ``apply``, ``verify`` (Test-ServicePrincipalAuthorization,
the Entra grant, real events), ``powershell`` (Exchange Online PowerShell through pwsh), ``script``
(the ``.ps1`` for an administrator), ``adapters`` (Graph), ``status`` (status and drift).
"""
