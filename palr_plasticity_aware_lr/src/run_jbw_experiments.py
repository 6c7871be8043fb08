"""Jelly Bean World launcher (original entry point): see palr.experiments.jbw."""
from palr.experiments.jbw import main

if __name__ == "__main__":
    raise SystemExit(main())
