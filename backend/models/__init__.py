"""Models: checkpoint reading, CLIP towers, dense attention, SimFeatUp, segmentors, presets."""
from backend.torchvision_compat import ensure_torchvision_importable

ensure_torchvision_importable()
