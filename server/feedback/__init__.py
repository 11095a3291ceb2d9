"""Wrong-verdict reports: the `/v1/feedback` blueprint (`routes`), the database behind it (`store`, with its
Alembic `migrations`), the export to training folders (`export`) and its OpenAPI paths (`openapi`)."""
