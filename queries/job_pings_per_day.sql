-- SQL twin of the built-in job `pings-per-day` (telemetry job pings-per-day): key, value.
SELECT submission_date AS key, count(*) AS value
FROM pings
GROUP BY submission_date
ORDER BY key;
