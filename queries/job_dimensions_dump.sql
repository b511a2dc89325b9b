-- SQL twin of the built-in map-only job `dimensions-dump`: document id, dimensions joined by '/'.
-- (Seed schema; the job writes in partition order, this in ping order: compare as sorted lines.)
SELECT document_id AS key,
       reason || '/' || appName || '/' || appUpdateChannel || '/' || appVersion || '/' || appBuildID
           || '/' || submission_date AS value
FROM pings
ORDER BY ping_id;
