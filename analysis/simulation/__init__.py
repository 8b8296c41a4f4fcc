"""Stock-flow models of mineral chains (METHODS.md section 10), as pure library code.

- :mod:`~analysis.simulation.mdl`: read a Vensim ``.mdl`` file in the supported subset
  (expression trees, dependency graph, units check, ranges);
- :mod:`~analysis.simulation.engine`: compile it into a vectorised run equal to PySD's;
- :mod:`~analysis.simulation.runner`: load models, run PySD, policy schedules, Monte Carlo;
- :mod:`~analysis.simulation.calibration`: least squares on log flows with bounds;
- :mod:`~analysis.simulation.theil`: R², MAPE and Theil's decomposition (Sterman 1984);
- :mod:`~analysis.simulation.sensitivity`: Sobol indices grouped by disruption node;
- :mod:`~analysis.simulation.cld`: the causal-loop diagram from the dependency graph;
- :mod:`~analysis.simulation.sketch`: the Vensim sketch section drawn from the equations;
- :mod:`~analysis.simulation.scenario_spec`: the scenario specification, validated (pydantic);
- :mod:`~analysis.simulation.inputs`, :mod:`~analysis.simulation.behaviour`,
  :mod:`~analysis.simulation.rare_earths`: model inputs from data, behaviour patterns, the
  rare-earth back-cast.

The stage that uses them is :mod:`analysis.stages.scenarios`.
"""
