"""Comparing agents over environments and seeds with the statistics of Agarwal et al. 2021:
load finished runs, aggregate normalised scores with stratified-bootstrap confidence intervals,
and write summary.md / summary.json / curves.png / aggregate.png."""
from agents.comparison.normalize import ATARI_RANDOM_HUMAN, KNOWN_BOUNDS, Normalizer, normalizer_for
from agents.comparison.report import compare, write_report
from agents.comparison.runs import (Run, final_returns, learning_curves, load_run, load_runs,
                                    normalized_auc)
from agents.comparison.stats import (Interval, aggregate_iqm, aggregate_mean, aggregate_median,
                                     bootstrap_interval, optimality_gap, performance_profile,
                                     probability_of_improvement, stratified_resample)

__all__ = [
    "ATARI_RANDOM_HUMAN", "KNOWN_BOUNDS", "Normalizer", "normalizer_for",
    "compare", "write_report",
    "Run", "final_returns", "learning_curves", "load_run", "load_runs", "normalized_auc",
    "Interval", "aggregate_iqm", "aggregate_mean", "aggregate_median", "bootstrap_interval",
    "optimality_gap", "performance_profile", "probability_of_improvement", "stratified_resample",
]
