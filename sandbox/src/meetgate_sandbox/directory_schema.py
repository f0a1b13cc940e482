"""The user and group resources as Graph v1.0 documents them: every property, its default, and which
ones ``$filter``, ``$search`` and ``$orderby`` take.

The sandbox keeps only what its directory needs (:class:`~meetgate_sandbox.state.User` and
:class:`~meetgate_sandbox.state.Group`); the rest of each resource is derived here, as a tenant without
on-premises sync, licences or dynamic groups would show it: ``null``, empty collections, or values that
follow from what is kept (``proxyAddresses`` from the mail address, the office's postal address from
``officeLocation``, a group's ``securityIdentifier`` from its id).
"""

from __future__ import annotations

import uuid
from typing import Any

from meetgate_sandbox.seed import OFFICE_ADDRESSES
from meetgate_sandbox.state import Group, User

#: every v1.0 user property (the default ``$select`` set is state.DEFAULT_USER_PROPERTIES)
USER_PROPERTIES = (
    "id", "aboutMe", "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans", "birthday",
    "businessPhones", "city", "companyName", "consentProvidedForMinor", "country", "createdDateTime",
    "creationType", "deletedDateTime", "department", "displayName", "employeeHireDate", "employeeId",
    "employeeLeaveDateTime", "employeeOrgData", "employeeType", "externalUserState",
    "externalUserStateChangeDateTime", "faxNumber", "givenName", "hireDate", "identities", "imAddresses",
    "interests", "isResourceAccount", "jobTitle", "lastPasswordChangeDateTime",
    "legalAgeGroupClassification", "licenseAssignmentStates", "mail", "mailboxSettings", "mailNickname",
    "mobilePhone", "mySite", "officeLocation", "onPremisesDistinguishedName", "onPremisesDomainName",
    "onPremisesExtensionAttributes", "onPremisesImmutableId", "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled", "onPremisesUserPrincipalName", "otherMails", "passwordPolicies",
    "passwordProfile", "pastProjects", "postalCode", "preferredDataLocation", "preferredLanguage",
    "preferredName", "provisionedPlans", "proxyAddresses", "refreshTokensValidFromDateTime",
    "responsibilities", "schools", "securityIdentifier", "serviceProvisioningErrors",
    "showInAddressList", "signInSessionsValidFromDateTime", "skills", "state", "streetAddress",
    "surname", "usageLocation", "userPrincipalName", "userType",
)  # fmt: skip
_USER_COLLECTIONS = frozenset(
    {
        "assignedLicenses", "assignedPlans", "businessPhones", "identities", "imAddresses", "interests",
        "licenseAssignmentStates", "onPremisesProvisioningErrors", "otherMails", "pastProjects",
        "provisionedPlans", "proxyAddresses", "responsibilities", "schools", "serviceProvisioningErrors",
        "skills",
    }
)  # fmt: skip

#: what GET /groups and /groups/{id} return without $select
DEFAULT_GROUP_PROPERTIES = (
    "id", "deletedDateTime", "classification", "createdDateTime", "creationOptions", "description",
    "displayName", "expirationDateTime", "groupTypes", "isAssignableToRole", "mail", "mailEnabled",
    "mailNickname", "membershipRule", "membershipRuleProcessingState", "onPremisesDomainName",
    "onPremisesLastSyncDateTime", "onPremisesNetBiosName", "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "preferredDataLocation", "preferredLanguage",
    "proxyAddresses", "renewedDateTime", "resourceBehaviorOptions", "resourceProvisioningOptions",
    "securityEnabled", "securityIdentifier", "theme", "visibility", "onPremisesProvisioningErrors",
    "serviceProvisioningErrors",
)  # fmt: skip
#: returned only on $select: licensing, labels, and the Exchange-backed properties of Microsoft 365 groups
SELECT_ONLY_GROUP_PROPERTIES = (
    "allowExternalSenders", "assignedLabels", "assignedLicenses", "autoSubscribeNewMembers",
    "hideFromAddressLists", "hideFromOutlookClients", "isSubscribedByMail", "licenseProcessingState",
    "unseenCount",
)  # fmt: skip
GROUP_PROPERTIES = (*DEFAULT_GROUP_PROPERTIES, *SELECT_ONLY_GROUP_PROPERTIES)
#: kept by Exchange for Microsoft 365 groups: Graph serves them on GET /groups/{id} only
EXCHANGE_GROUP_PROPERTIES = frozenset(
    {
        "allowExternalSenders",
        "autoSubscribeNewMembers",
        "hideFromAddressLists",
        "hideFromOutlookClients",
        "isSubscribedByMail",
        "unseenCount",
    }
)

#: the properties $filter takes (and $search: its string ones), in Graph's spelling
USER_FILTERABLE = (
    "id", "accountEnabled", "ageGroup", "businessPhones", "city", "companyName", "country",
    "createdDateTime", "creationType", "department", "displayName", "employeeHireDate", "employeeId",
    "employeeType", "externalUserState", "faxNumber", "givenName", "imAddresses", "isResourceAccount",
    "jobTitle", "mail", "mailNickname", "mobilePhone", "officeLocation", "onPremisesImmutableId",
    "onPremisesSamAccountName", "onPremisesSyncEnabled", "onPremisesUserPrincipalName", "otherMails",
    "postalCode", "preferredLanguage", "proxyAddresses", "showInAddressList", "state",
    "streetAddress", "surname", "usageLocation", "userPrincipalName", "userType",
)  # fmt: skip
GROUP_FILTERABLE = (
    "id", "classification", "description", "displayName", "expirationDateTime", "groupTypes",
    "isAssignableToRole", "mail", "mailEnabled", "mailNickname", "membershipRuleProcessingState",
    "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "preferredLanguage", "proxyAddresses", "renewedDateTime", "securityEnabled", "securityIdentifier",
    "theme", "visibility",
)  # fmt: skip
#: multi-valued properties a lambda (``any``) ranges over
COLLECTIONS = frozenset({"businessPhones", "groupTypes", "imAddresses", "otherMails", "proxyAddresses"})
#: the only properties ``endsWith`` takes (advanced queries only)
ENDSWITH = frozenset({"mail", "otherMails", "userPrincipalName", "proxyAddresses"})
#: $orderby: property -> True when it sorts by default, False when only in advanced queries
USER_ORDERBY = {
    "displayName": True,
    "userPrincipalName": True,
    "createdDateTime": False,
    "deletedDateTime": False,
}
GROUP_ORDERBY = {"displayName": True, "deletedDateTime": False}


def _security_identifier(object_id: str) -> str:
    """Entra's SID for a cloud object: S-1-12-1 and the id's bytes as four little-endian integers."""
    raw = uuid.UUID(object_id).bytes_le
    parts = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 16, 4)]
    return "S-1-12-1-" + "-".join(str(p) for p in parts)


def user_resource(user: User) -> dict[str, Any]:
    """Every v1.0 property of the user, in Graph's names."""
    known = user.to_graph()
    data: dict[str, Any] = {name: ([] if name in _USER_COLLECTIONS else None) for name in USER_PROPERTIES}
    upn = user.user_principal_name
    data.update(
        {
            "identities": [
                {"signInType": "userPrincipalName", "issuer": upn.split("@", 1)[1], "issuerAssignedId": upn}
            ],
            "imAddresses": [upn],
            "onPremisesExtensionAttributes": {f"extensionAttribute{i}": None for i in range(1, 16)},
            "proxyAddresses": [f"SMTP:{known['mail']}"],
            "securityIdentifier": _security_identifier(user.id),
            "refreshTokensValidFromDateTime": known["createdDateTime"],
            "signInSessionsValidFromDateTime": known["createdDateTime"],
        }
    )
    address = OFFICE_ADDRESSES.get(user.office_location or "")
    if address is not None:
        data.update(address)
    data.update({k: v for k, v in known.items() if v is not None or k not in data})
    return data


def group_resource(group: Group, domain: str) -> dict[str, Any]:
    """Every v1.0 property of the group, in Graph's names."""
    known = group.to_graph(domain)
    unified = group.unified
    data: dict[str, Any] = {name: None for name in GROUP_PROPERTIES}
    data.update(
        {
            "assignedLabels": [],
            "assignedLicenses": [],
            "creationOptions": [],
            "onPremisesProvisioningErrors": [],
            "proxyAddresses": [f"SMTP:{known['mail']}"] if known.get("mail") else [],
            "renewedDateTime": known["createdDateTime"],
            "resourceBehaviorOptions": [],
            "resourceProvisioningOptions": [],
            "securityIdentifier": _security_identifier(group.id),
            "serviceProvisioningErrors": [],
        }
    )
    if unified:  # Exchange keeps these for Microsoft 365 groups only
        data.update(
            {
                "allowExternalSenders": False,
                "autoSubscribeNewMembers": False,
                "hideFromAddressLists": False,
                "hideFromOutlookClients": False,
                "isSubscribedByMail": False,
                "unseenCount": 0,
            }
        )
    data.update(known)
    return data
