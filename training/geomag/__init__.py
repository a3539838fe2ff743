"""GeoMag training (paper §3-4), in two stages, and the data it reads.

``samples`` the sample every source yields; ``masks`` COCO RLE and polygon decoding;
``rrsisd``, ``refsegrs``, ``geopixeld`` readers of the released layouts; ``generated`` the
coloured-shapes referring set and (query, granularity) pairs; ``pairs`` pair lists;
``config`` the YAML schemas; ``stage1`` the TMRA classifier; ``mix`` the stage 2 data mix;
``stage2`` LoRA + text projection + pixel decoder. Run it with
``python -m training.geomag --config FILE``.
"""
