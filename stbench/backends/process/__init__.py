"""Trials as local processes: `backend` is the trial back-end, `trial_supervisor` the process
(run as `python -m stbench.backends.process.trial_supervisor`) that forks one child per trial."""
