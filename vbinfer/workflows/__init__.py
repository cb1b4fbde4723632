"""The workflows users run, end to end, each as ``run(out_dir, ...) -> WorkflowReport``."""

from vbinfer.workflows._report import WorkflowReport, format_table

__all__ = ["WorkflowReport", "format_table"]
