"""Leave a message instead of waiting: the message keeps the caller's place in the queue like a
callback; the agent it is offered to hears it, then the caller is called back."""
