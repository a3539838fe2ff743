"""Zero-shot scene classification and text-image retrieval with a CLIP's global image embedding."""
