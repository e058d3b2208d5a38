"""HTTP layer: the only BlackSheep code."""
