"""Benchmarks: ptft_keras against its peers, measured side by side in one process."""
