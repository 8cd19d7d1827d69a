"""Saved acquisitions on disk: the sample folder, its fields (OME-TIFF, OME-Zarr) and their metadata.

Written by the instrument and the simulator; read by the pipeline, review, validation and report.
Nothing here drives hardware.
"""
