"""leukoscope.classifier."""
