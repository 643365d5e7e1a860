"""Tensor machinery by hand: broadcasting, element-wise engines, views, strided storage, vectorisation."""
