"""Benchmarks: figures beside a baseline measured in the same run (the machine is shared: ratios hold)."""
