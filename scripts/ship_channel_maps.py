"""Writes assets/channel_code/maps.pt: the code map of every shipped network at 3x3, 5x5 and 7x7, every layer, with
the Channel code page's default of 32 images per cell (fp32, ~0.7 MB). The page then reads a map of a shipped
network instead of placing 32 images in each of up to 49 cells; a checkpoint that changes no longer matches its
entry (the key holds the weights' hash) and is computed again.

    python scripts/ship_channel_maps.py
"""
import time

from engine.channel.code_map import SHIPPED_MAPS
from engine.channel.lab import shipped_maps_document
from engine.core.storage import save_torch

if __name__ == "__main__":
    start = time.perf_counter()
    document = shipped_maps_document()
    save_torch(document, SHIPPED_MAPS)
    print(f"{SHIPPED_MAPS}: {len(document['maps'])} maps ({', '.join(document['nets'])}), "
          f"{SHIPPED_MAPS.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - start:.0f} s")
