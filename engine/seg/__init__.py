"""Segmentation lab (paper Sec. 4.2): street scenes, DeepLabV3, channel rankings and zeroing."""
