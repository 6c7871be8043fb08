"""Permuted-observation continual CartPole launcher: see palr.experiments.permuted_cartpole."""
from palr.experiments.permuted_cartpole import main

if __name__ == "__main__":
    raise SystemExit(main())
