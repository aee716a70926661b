"""Complaints: tickets with a first-responsible owner, tier-based SLA clocks, escalation and surveys."""
