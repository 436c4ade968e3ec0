"""The admin console (`bots.web.app.mount_console`), served under /admin on the HTTP server."""
