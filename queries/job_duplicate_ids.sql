-- SQL twin of the built-in job `duplicate-ids`: (document id, ping type) pairs seen more than once, with their
-- copies (docs/store.md "Duplicates": the same id under two ping types is two pings, not a duplicate).
SELECT document_id || coalesce('/' || ping_type, '') AS key, copies AS value
FROM duplicate_documents
ORDER BY key;
