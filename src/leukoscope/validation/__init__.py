"""Labelled acquisitions: the labels file, training sets cut by the pipeline, validation runs."""
