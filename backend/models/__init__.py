"""Models: checkpoint reading, CLIP towers, dense attention, SimFeatUp, segmentors, presets, the cache."""
