"""Continual World CW10/CW20 launcher (original entry point): see palr.experiments.continual_world."""
from palr.experiments.continual_world import main

if __name__ == "__main__":
    raise SystemExit(main())
