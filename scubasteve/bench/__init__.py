"""Benchmarks behind `scubasteve bench ...`: they print measurements, never pass/fail."""
