"""``rsov batch``: many scenes, one output set each, a manifest that lets a re-run resume."""
