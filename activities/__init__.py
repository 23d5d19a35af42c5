"""Everything with side effects that workflows need, run by the worker as Temporal activities."""
