"""SimFeatUp (SegEarth-OV, section 3.2): train the JBU_One upsampler on the features of a frozen CLIP.

``config`` the YAML schema; ``data`` random crops of a folder of images; ``jitter`` the
multi-view flips, translations and zooms; ``upsampling`` the upsampler's differentiable,
memory-frugal training path; ``model`` the CLIP features, the downsampler, the content
retention network and the exported files; ``losses`` L_rec and L_img; ``train`` the run.
Run it with ``python -m training.simfeatup --config FILE``.
"""
