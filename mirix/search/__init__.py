"""Search: filters, time ranges and ranking."""
