"""In-memory stand-ins for the core's ports and unit of work: handler tests run in milliseconds, no database."""
