"""AlignEarth (SegEarth-OV-2, section 4): a SAR image encoder distilled from a frozen optical CLIP.

``config`` the YAML schema; ``data`` paired optical-SAR images; ``model`` the teacher,
the student and their projected tokens; ``losses`` Eqs. 10-12; ``train`` the run and the
exported checkpoint. Run it with ``python -m training.alignearth --config FILE``.
"""
