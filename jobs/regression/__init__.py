"""Regression: linear regression (one Dense unit) on the scikit-learn diabetes data."""
