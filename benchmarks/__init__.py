"""CritBench: benchmarks for training classifiers that must not miss the critical class."""
import os

# OpenMP threads waiting at a barrier sleep instead of spinning (a user's own OMP_WAIT_POLICY wins):
# on a shared CPU, spinning threads take the cores from those still computing. On a 2-core AMD EPYC
# with one competing process, bf16 ResNet18 28 px training went from 45.7 to 59.6 img/s; quiet, 134
# and 140 img/s (docs/speed.md). libgomp reads it when torch loads it, so it is set here, in the
# package every command imports first; records say which policy ran (env.omp_wait_policy).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
