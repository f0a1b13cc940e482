"""Who may provision: delegated scopes + directory roles, or an automation app's roles."""

import pytest

from meetgate.admin import signin as s


def test_global_admin_with_scopes_may_register_and_consent():
    rights = s.admin_rights(
        is_app_only=False,
        name="admin@contoso",
        permissions=["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"],
        role_template_ids=[s.GLOBAL_ADMINISTRATOR],
    )
    assert (rights.can_read, rights.can_register, rights.can_consent) == (True, True, True)
    assert rights.directory_roles == ("Global Administrator",)
    rights.require(register=True, consent=True)


def test_application_administrator_registers_but_cannot_consent_to_graph_roles():
    rights = s.admin_rights(
        is_app_only=False,
        name="appadmin@contoso",
        permissions=["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"],
        role_template_ids=[s.APPLICATION_ADMINISTRATOR.upper()],
    )
    rights.require(register=True)
    with pytest.raises(s.SignInError, match="admin consent") as info:
        rights.require(register=True, consent=True)
    assert "Global Administrator" in info.value.remedy


def test_user_without_role_or_without_scope_is_refused():
    plain = s.admin_rights(is_app_only=False, name="u@c", permissions=["Application.ReadWrite.All"])
    with pytest.raises(s.SignInError, match=r"u@c \(no directory role\) may not change"):
        plain.require(register=True)
    plain.require()  # reading is fine
    no_scope = s.admin_rights(
        is_app_only=False, name="a@c", permissions=["User.Read"], role_template_ids=[s.GLOBAL_ADMINISTRATOR]
    )
    assert not no_scope.can_register
    with pytest.raises(s.SignInError, match="no delegated permission to read"):
        no_scope.require()


def test_automation_app_needs_both_application_permissions():
    app = s.admin_rights(is_app_only=True, name="auto", permissions=["Application.ReadWrite.All"])
    app.require(register=True)
    with pytest.raises(s.SignInError, match=r"lacks AppRoleAssignment\.ReadWrite\.All"):
        app.require(consent=True)
    reader = s.admin_rights(is_app_only=True, name="r", permissions=["Application.Read.All"])
    reader.require()
    with pytest.raises(s.SignInError, match=r"lacks Application\.ReadWrite\.All"):
        reader.require(register=True)
    nothing = s.admin_rights(is_app_only=True, name="n", permissions=[])
    with pytest.raises(s.SignInError, match="may not read"):
        nothing.require()
