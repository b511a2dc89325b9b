-- SQL twin of the built-in job `duplicate-ids`: document ids seen more than once, with their copies.
SELECT document_id AS key, copies AS value
FROM duplicate_documents
ORDER BY key;
