"""Metrics (Prometheus), logs (text or JSON, one line per event) and the
rate-limited, one-line error logging."""
