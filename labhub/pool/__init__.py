"""The warm pool: waiting lab containers that become a user's lab at login."""
