"""leukoscope.instrument.simulator."""
