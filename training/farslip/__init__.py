"""FarSLIP (Li et al., 2025): a CLIP fine-tuned in two stages for fine-grained remote-sensing understanding.

``config`` the YAML schemas of the two stages; ``data`` image-caption shards and lists
(stage I) and MGRS-200k-style images with captions and boxes (stage II); ``model`` the CLIP,
its dense tokens, the EMA teacher, LongCLIP's text positions and the exported checkpoint;
``losses`` global contrast, self-distillation and region-category contrast; ``evaluate``
zero-shot checks; ``train`` the two stages' tasks and the run. Run it with
``python -m training.farslip --config FILE``.
"""
