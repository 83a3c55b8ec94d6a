"""The table job (``dgmbench table``): train or load each baseline family's preset per seed,
score it, draw its sample grid to a file and write the leaderboard. The only part of the
harness, with ``dgmbench/commands/``, that imports ``baselines``; ``dgmbench/report/`` only
reads what it writes."""
