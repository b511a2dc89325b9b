-- SQL twin of the built-in job `histogram-distribution`: for every enumerated/boolean histogram, the sum over all
-- pings with the one histogram sum rule (histogram_sum: exact element-wise bucket sums and the five statistics,
-- printed as the storage-format array; docs/sql.md), grouped by bucket layout: a histogram stored in several
-- layouts gives one row per layout, keyed 'NAME [n buckets]', never a zero-padded sum. Histograms: top-level
-- `histograms`, else `payload.histograms` (unified pings). The kind comes from the ping's revision through the
-- histogram cache the store remembers (histogram_kind: enumerated, boolean and flag are counted); where it is
-- unknown (NULL), a stored log_sum and log_sum_squares of -1 (a non-exponential histogram) decides.
WITH h AS (
    SELECT p.ping_id, e.key AS name, e.value AS arr, json_array_length(e.value) - 5 AS n,
           histogram_kind(e.key, p.revision, json_array_length(e.value) - 5) AS kind
    FROM pings p,
         json_each(coalesce(json_extract(p.payload, '$.histograms'), json_extract(p.payload, '$.payload.histograms'))) e
    WHERE e.type = 'array' AND json_array_length(e.value) >= 6
),
counted AS (
    SELECT ping_id, name, n FROM h
    WHERE CASE WHEN kind IS NOT NULL THEN kind IN ('enumerated', 'boolean', 'flag')
               ELSE json_extract(arr, '$[#-4]') = -1 AND json_extract(arr, '$[#-3]') = -1 END
),
s AS (
    SELECT name, n, histogram_sum(ping_id, name, n) AS value
    FROM counted
    GROUP BY name, n
)
SELECT CASE WHEN count(*) OVER (PARTITION BY name) > 1 THEN name || ' [' || n || ' buckets]' ELSE name END AS key,
       value
FROM s
WHERE value IS NOT NULL
ORDER BY name, n;
