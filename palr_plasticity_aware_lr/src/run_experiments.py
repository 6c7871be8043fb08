"""Continual CartPole launcher (the seed's entry point): see palr.experiments.cartpole."""
from palr.experiments.cartpole import main

if __name__ == "__main__":
    raise SystemExit(main())
