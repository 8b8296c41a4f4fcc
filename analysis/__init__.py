"""China–ASEAN strategic-mineral industrial-chain synergy: a reproducible pipeline.

Stages (one module each): fetch -> clean -> indices -> models -> robustness -> report.
"""

__version__ = "0.1.0"
