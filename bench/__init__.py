"""Benchmarks run against a running stack (`kartu up`); figures go to bench/results/."""
