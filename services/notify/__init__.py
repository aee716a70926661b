"""Notify: follow-up playbooks that turn events into messages and staff tasks, never sent twice."""
