"""What a person runs: the ``glassnet`` command, the studio, sweeps and the benchmark.

- ``cli.py``: the ``glassnet`` command (train, predict, inspect, explain, export, import, ...);
- ``studio/``: the local web page on your own model (extra ``glassnet[studio]``);
- ``sweep.py``: ``glassnet sweep`` on Ray Tune (extra ``glassnet[sweep]``);
- ``benchmark/``: ``glassnet bench``, glassnet beside PyTorch.

Nothing here is imported by ``import glassnet``: each app is loaded when it is run.

Imports: every other wing.
"""
