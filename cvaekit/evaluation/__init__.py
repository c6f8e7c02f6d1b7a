"""Evaluation: what a metric receives (`EvalContext`), every metric at every checkpoint
(`evaluate`), their tables, and the figures that show a run's progress."""

from cvaekit.evaluation.context import EvalContext, run_metrics

__all__ = ["EvalContext", "run_metrics"]
