"""Datasets: the procedural ScaleShapes benchmark and loaders for PASCAL VOC 2012 and PASCAL-Person-Part."""
