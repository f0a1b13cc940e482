"""In-memory test doubles of meetgate's ports, for unit tests and benchmarks that need no server.

They implement the product's own interfaces (hence import its public modules), unlike the emulator,
which speaks HTTP like Microsoft and borrows nothing from the client it tests.

- :class:`~meetgate_sandbox.fakes.policy_tenant.FakePolicyTenant`: every policy port of
  ``meetgate.admin.policy`` (policies, grants, users, groups) over dictionaries.
- :class:`~meetgate_sandbox.fakes.meetings.InMemoryMeetings`: the gateway's ``AsyncMeetingsPort`` (an
  ``AsyncMeetingsService`` with Graph's createOrGet semantics and the Graph client's own errors).
"""
