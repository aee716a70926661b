"""The library the four csm services import: events, bus, outbox/inbox, database, auth, settings."""

VERSION = "0.1.0"
