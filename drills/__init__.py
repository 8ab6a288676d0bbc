"""Fault drills: the hub in its production shape on Postgres, under injected faults, audited."""
