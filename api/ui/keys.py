"""The dashboard's application state."""

import asyncio

from aiohttp import web

# Set at shutdown: live streams end within one refresh instead of holding the server's shutdown open.
STREAMS_STOP = web.AppKey("dashboard_streams_stop", asyncio.Event)
