"""The application layer: the `msat` console (console), the run-time commands (cli), the main
job (run, studies, checks, report, plots)."""
