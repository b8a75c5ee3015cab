"""Keyguard benchmarks: ``python bench/run.py [--quick]`` (or ``make bench``).

Every figure is reported next to a baseline measured in the same run, so the ratios mean
something on any machine; nothing here asserts a timing.
"""
