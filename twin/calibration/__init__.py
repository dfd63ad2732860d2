"""The twin's parameters with provenance: the file model (`parameters`, calibration.yaml) and the NNLS fit."""
