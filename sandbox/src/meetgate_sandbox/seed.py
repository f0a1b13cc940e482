"""Deterministic, realistic directory content for a new tenant.

The first names are the people of Microsoft's demo tenants (Adele Vance, Alex Wilber...), so a
sandbox tenant reads like the ones administrators know. The same seed always gives the same users,
ids and groups.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

DEMO_PEOPLE = [
    ("Adele", "Vance", "Retail Manager", "Retail"),
    ("Alex", "Wilber", "Marketing Assistant", "Marketing"),
    ("Diego", "Siciliani", "HR Manager", "HR"),
    ("Grady", "Archie", "Designer", "R&D"),
    ("Henrietta", "Mueller", "Developer", "R&D"),
    ("Isaiah", "Langer", "Sales Rep", "Sales"),
    ("Johanna", "Lorenz", "Senior Engineer", "Engineering"),
    ("Joni", "Sherman", "Paralegal", "Legal"),
    ("Lee", "Gu", "Director", "Manufacturing"),
    ("Lidia", "Holloway", "Product Manager", "Engineering"),
    ("Lynne", "Robbins", "Planner", "Retail"),
    ("Megan", "Bowen", "Marketing Manager", "Marketing"),
    ("Miriam", "Graham", "Director", "Sales"),
    ("Nestor", "Wilke", "Director", "Operations"),
    ("Patti", "Fernandez", "President", "Executive Management"),
    ("Pradeep", "Gupta", "Accountant", "Finance"),
]
FIRST_NAMES = [
    "Aaron", "Bianca", "Carlos", "Dana", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kara",
    "Liam", "Maya", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei",
    "Ximena", "Yusuf", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Abbott", "Brandt", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova",
    "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zimmermann",
]  # fmt: skip
JOBS = [
    ("Sales Rep", "Sales"), ("Account Manager", "Sales"), ("Consultant", "Services"),
    ("Recruiter", "HR"), ("Support Engineer", "Support"), ("Advisor", "Student Services"),
    ("Analyst", "Finance"), ("Coordinator", "Operations"), ("Engineer", "Engineering"),
]  # fmt: skip
OFFICES = ["Redmond", "Seattle", "Berlin", "London", "Paris", "Tokyo", "Sydney", "Toronto"]
#: each office's postal address, as the user resource spells it (streetAddress, city, state, postalCode, country)
OFFICE_ADDRESSES: dict[str, dict[str, str | None]] = {
    office: {"streetAddress": street, "city": city, "state": state, "postalCode": code, "country": country}
    for office, street, city, state, code, country in (
        ("Redmond", "One Microsoft Way", "Redmond", "WA", "98052", "United States"),
        ("Seattle", "320 Westlake Ave N", "Seattle", "WA", "98109", "United States"),
        ("Berlin", "Unter den Linden 17", "Berlin", None, "10117", "Germany"),
        ("London", "2 Kingdom Street", "London", None, "W2 6BD", "United Kingdom"),
        ("Paris", "37 Quai du President Roosevelt", "Issy-les-Moulineaux", None, "92130", "France"),
        ("Tokyo", "2-16-3 Konan", "Minato-ku", "Tokyo", "108-0075", "Japan"),
        ("Sydney", "11 Talavera Road", "North Ryde", "NSW", "2113", "Australia"),
        ("Toronto", "81 Bay Street", "Toronto", "ON", "M5J 0E7", "Canada"),
    )
}


@dataclass
class SeedUser:
    id: str
    given_name: str
    surname: str
    user_principal_name: str
    job_title: str
    department: str
    office_location: str
    mobile_phone: str
    account_enabled: bool


@dataclass
class SeedGroup:
    id: str
    display_name: str
    description: str
    mail_nickname: str
    security_enabled: bool
    unified: bool
    member_ids: list[str] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _nickname(first: str, last: str) -> str:
    return "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")


def seed_users(count: int, domain: str, rng: random.Random) -> list[SeedUser]:
    """``count`` users; a few (about one in twelve, never among the first ten) are disabled."""
    people: list[tuple[str, str, str, str]] = list(DEMO_PEOPLE)
    extra = [(f, s) for f in FIRST_NAMES for s in LAST_NAMES]
    rng.shuffle(extra)
    for first, last in extra:
        job, dept = JOBS[len(people) % len(JOBS)]
        people.append((first, last, job, dept))
    disabled: set[int] = set()
    if count > 10:
        candidates = list(range(10, count))
        disabled = set(rng.sample(candidates, max(1, count // 12)))
    users: list[SeedUser] = []
    taken: set[str] = set()
    for index in range(count):
        first, last, job, dept = people[index % len(people)]
        nick = _nickname(first, last)
        if nick in taken:
            nick = f"{nick}{index}"
        taken.add(nick)
        users.append(
            SeedUser(
                id=_uuid(rng),
                given_name=first,
                surname=last,
                user_principal_name=f"{nick}@{domain}",
                job_title=job,
                department=dept,
                office_location=OFFICES[index % len(OFFICES)],
                mobile_phone=f"+1 425 555 {rng.randint(0, 9999):04d}",
                account_enabled=index not in disabled,
            )
        )
    return users


def seed_groups(user_ids: list[str], admin_id: str, rng: random.Random) -> list[SeedGroup]:
    """All Company, two department groups, and two nested security groups (groups in groups)."""
    n = len(user_ids)
    # consecutive slices after the first user, sized for 50 users as 8 / 6 / 3 / 2, never empty
    bounds = [1]
    for share in (6, 8, 16, 25):
        bounds.append(bounds[-1] + max(1, n // share))
    sales = SeedGroup(
        _uuid(rng), "Sales and Marketing", "Sales and marketing staff", "salesandmarketing", True, False
    )
    sales.member_ids = user_ids[bounds[0] : bounds[1]]
    support = SeedGroup(_uuid(rng), "Customer Support", "Support engineers", "customersupport", True, False)
    support.member_ids = user_ids[bounds[1] : bounds[2]]
    organizers = SeedGroup(
        _uuid(rng),
        "Meeting Organizers",
        "People who schedule meetings for customers (includes Sales and Marketing)",
        "meetingorganizers",
        True,
        False,
    )
    organizers.member_ids = [*user_ids[bounds[2] : bounds[3]], sales.id]
    regional = SeedGroup(
        _uuid(rng),
        "Regional Managers",
        "Managers; includes every meeting organizer",
        "regionalmanagers",
        True,
        False,
    )
    regional.member_ids = [*user_ids[bounds[3] : bounds[4]], organizers.id]
    everyone = SeedGroup(_uuid(rng), "All Company", "Everyone in the organization", "allcompany", False, True)
    everyone.member_ids = [*user_ids, admin_id]
    return [everyone, sales, support, organizers, regional]
