"""Measurement libraries: pure functions that turn tidy data into indicators and composites.

The planned package layout (issue 21) moves the construct, synergy and weighting modules here;
``analysis.measures.scorecard`` (the six-dimension supply-chain scorecard, METHODS.md section 11)
is the first to be born in it.
"""
