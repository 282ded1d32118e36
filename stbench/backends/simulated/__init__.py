"""`--backend simulated`: learning curves replayed in simulated time. `backend` is the trial
back-end, `sources` turns a benchmark's code or a recorded study into the curves, `surrogate`
and `surrogate_predictor` make a recorded study a blackbox of any configuration."""
