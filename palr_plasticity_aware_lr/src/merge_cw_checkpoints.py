"""Merge per-seed, per-agent Continual World results (original entry point): palr.experiments.cw_merge."""
from palr.experiments.cw_merge import merge_main

if __name__ == "__main__":
    raise SystemExit(merge_main())
