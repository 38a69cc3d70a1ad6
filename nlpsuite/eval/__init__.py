"""Evaluation: recipes over labelled data, metrics, calibration fits and language-model cross-entropy."""
