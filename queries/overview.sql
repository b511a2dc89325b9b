-- The main job's report: what is in the store, by dimension, and what the import rejected.
SELECT count(*) AS pings, count(DISTINCT document_id) AS documents,
       count(DISTINCT submission_date) AS days, min(submission_date) AS first_day, max(submission_date) AS last_day
FROM pings;

SELECT reason, appUpdateChannel AS channel, count(*) AS pings,
       sum(os = 'WINNT') AS winnt, sum(os = 'Darwin') AS darwin, sum(os = 'Linux') AS linux
FROM pings GROUP BY reason, appUpdateChannel ORDER BY reason, channel;

SELECT severity, reason, count(*) AS count FROM import_errors GROUP BY severity, reason ORDER BY severity, reason;
