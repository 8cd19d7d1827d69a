"""leukoscope.report."""
