-- SQL twin of the built-in job `os-distribution`: pings per info.OS; pings without it are left out
-- (the job reports them as bad pings, like the seed's KeyError).
SELECT os AS key, count(*) AS value
FROM pings
WHERE os IS NOT NULL
GROUP BY os
ORDER BY key;
