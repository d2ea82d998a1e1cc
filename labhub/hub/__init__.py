"""The hub side: labhub.configure(), the one table of options, and the checks and duties of hub start-up."""
