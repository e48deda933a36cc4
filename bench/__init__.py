"""The benchmark: data generator, floor, peer and harness (see bench/README.md)."""
