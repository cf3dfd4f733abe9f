"""The HTTP API: an aiohttp application whose routes are grouped by domain modules."""
