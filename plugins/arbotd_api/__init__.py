"""The builtin ``api`` plugin: the REST and WebSocket API of ``spec/api-reference.txt``,
a Quart-Trio app served by Hypercorn inside the daemon's nursery."""
