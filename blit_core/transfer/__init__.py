"""The transfer engine: roots, the per-directory worker, the process pool and the pipeline."""
