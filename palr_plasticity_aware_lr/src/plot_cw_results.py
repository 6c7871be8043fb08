"""Plot a merged Continual World sweep (original entry point): palr.experiments.cw_merge."""
from palr.experiments.cw_merge import plot_main

if __name__ == "__main__":
    raise SystemExit(plot_main())
