"""leukoscope.instrument."""
