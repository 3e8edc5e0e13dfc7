"""Services (managers): the only code that reads and writes the database for the API."""
