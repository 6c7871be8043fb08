"""Plot a cartpole sweep's output folder (thin entry point): palr.experiments.plot_results."""
from palr.experiments.plot_results import main

if __name__ == "__main__":
    raise SystemExit(main("cartpole"))
