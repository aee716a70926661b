"""The console: the service team's web workspace. It owns no business data and calls the four APIs."""
