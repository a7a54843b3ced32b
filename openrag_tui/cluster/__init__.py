"""The cluster view: dashboard payloads parsed into plain data, and the figures drawn from them."""
