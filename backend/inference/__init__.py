"""Running a loaded model over rasters: normalised windows in, stitched logits out (torch)."""
