"""Benchmarks behind `make bench` (throughput ratio, history size, latency, breach lateness, scale, chaos).

May import everything; nothing imports bench/ but its own entry points and the smoke test.
"""
