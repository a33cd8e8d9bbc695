"""Benchmarks: scripts, not tests. Each prints a table and times things as ratios against a reference
measured in the same run, so the numbers mean the same on a laptop and on CI."""
