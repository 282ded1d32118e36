"""HPO methods: the registry of Syne Tune schedulers (`registry.py`) and stbench's own parts
of them (ASHA's sorted rungs, the GP searchers behind BO and MOBSTER). Between the model and
the orchestration: it builds on the model's types and brings Syne Tune's schedulers, SciPy
and scikit-learn, which the model does not import."""
