"""What the gateway served: one record per inference request, kept in a bounded ring and,
with `store.path`, in SQLite; the dashboard, `/api/activity` and the metrics read it."""
