"""The local HTTP service (``rsov serve``): jobs over FastAPI, run one at a time by a worker that owns the device."""
