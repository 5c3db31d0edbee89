"""Channel adapters: transports that carry public replies out (and messages in)."""
