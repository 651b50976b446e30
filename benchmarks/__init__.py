"""CritBench: benchmarks for training classifiers that must not miss the critical class."""
