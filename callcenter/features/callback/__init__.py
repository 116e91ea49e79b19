"""Callbacks: a caller who hangs up keeps their place in the queue and is called back."""
