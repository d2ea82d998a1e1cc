"""Spawn profiles by group and GPU allocation, and the spawner part that applies them."""
