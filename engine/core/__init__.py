"""Infrastructure every lab shares: device, progress and stop, storage, checkpoints, training loop, caching,
distributed runs, errors and the torchvision fix. Imports nothing from ``data``, ``models`` or a lab."""
