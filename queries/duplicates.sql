-- Document ids seen more than once (retried submissions; an idle-daily then a saved-session of one
-- session) and how the deduplicated view resolves them (docs/store.md "Duplicates").
SELECT
    (SELECT count(*) FROM pings) AS pings,
    (SELECT count(*) FROM pings_dedup) AS distinct_documents,
    (SELECT count(*) FROM duplicate_documents) AS duplicated_ids,
    (SELECT coalesce(sum(copies - 1), 0) FROM duplicate_documents) AS extra_copies;
