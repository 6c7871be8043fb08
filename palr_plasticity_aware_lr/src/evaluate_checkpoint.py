"""Evaluate a run's checkpoint on every task (thin entry point): palr.experiments.evaluate."""
from palr.experiments.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main(prog="evaluate_checkpoint.py"))
