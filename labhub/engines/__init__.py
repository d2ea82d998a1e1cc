"""What the hub needs from a Docker engine beside the spawners: the labs' network, who holds a host port."""
