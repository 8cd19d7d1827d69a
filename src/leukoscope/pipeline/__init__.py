"""leukoscope.pipeline."""
