"""Evaluation metrics shared by the trainers and ``rsov eval``: ``referring`` (P@0.5, oIoU, mIoU)."""
