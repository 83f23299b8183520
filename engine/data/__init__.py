"""Data: procedurally generated patches, real patch sources, and grid canvases."""
