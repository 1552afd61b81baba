"""Sending: plans of chunks, the workers that send them, rate limits, the queue."""
