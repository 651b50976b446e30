"""HTML reports, leaderboard tables and AUC statistics from CritBench run records."""
