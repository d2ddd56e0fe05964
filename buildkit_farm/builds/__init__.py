"""`farm build`: check everything first, build by digest across the farm, publish, verify."""
