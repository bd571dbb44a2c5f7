"""What tests, the e2e stack and the benchmarks share to run processes: free ports, starting and
stopping by PID, waiting for an address to answer, a predictor process (harness/processes.py).
Not shipped: pyproject packages only predictor and modelrollout."""
