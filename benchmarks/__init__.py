"""picket's benchmarks: each script prints its figures and compares ratios within one run."""
