"""kubectl-modelrollout: the kubectl plugin (screen.py draws a ModelRollout, cli.py talks to the
apiserver)."""
