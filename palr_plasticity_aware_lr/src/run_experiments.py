"""Continual CartPole launcher (original entry point): see palr.experiments.cartpole."""
from palr.experiments.cartpole import main

if __name__ == "__main__":
    raise SystemExit(main())
