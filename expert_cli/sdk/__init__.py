"""The application layer: everything above it (the CLI, scripts, the server) goes through here."""
