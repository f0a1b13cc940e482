"""How `setup` / `cert` commands render failures: what failed, what to do, and the exit code."""

import pytest
import typer

from meetgate.admin.registration import RegistrationError
from meetgate.cli.setup import handle_errors
from meetgate.graph.errors import DelegatedTokenError, ServiceError


def test_a_403_is_explained_as_missing_admin_rights(capsys):
    with pytest.raises(typer.Exit) as info:
        handle_errors(DelegatedTokenError("Insufficient privileges to complete the operation.", status=403))
    assert info.value.exit_code == 2
    err = capsys.readouterr().err
    assert "refused the change" in err and "Global Administrator" in err


def test_input_errors_exit_2_with_their_remedy(capsys):
    with pytest.raises(typer.Exit) as info:
        handle_errors(RegistrationError("2 applications are named 'X'", "set client_id in the profile"))
    assert info.value.exit_code == 2
    assert "set client_id in the profile" in capsys.readouterr().err


def test_service_failures_exit_1(capsys):
    with pytest.raises(typer.Exit) as info:
        handle_errors(ServiceError("Graph failed", status=503))
    assert info.value.exit_code == 1


def test_foreign_errors_are_not_swallowed():
    with pytest.raises(KeyError):
        handle_errors(KeyError("bug"))
