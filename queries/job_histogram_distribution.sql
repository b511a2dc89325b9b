-- SQL twin of the built-in job `histogram-distribution`: for every enumerated/boolean histogram, the
-- element-wise sum of its bucket counts over all pings, printed as [b0,b1,...]. Histograms: top-level
-- `histograms`, else `payload.histograms` (unified pings). The kind comes from the ping's revision through the
-- histogram cache the store remembers (histogram_kind: enumerated, boolean and flag are counted); where it is
-- unknown (NULL), a stored log_sum and log_sum_squares of -1 (a non-exponential histogram) decides.
WITH h AS (
    SELECT e.key AS name, e.value AS arr,
           histogram_kind(e.key, p.revision, json_array_length(e.value) - 5) AS kind
    FROM pings p,
         json_each(coalesce(json_extract(p.payload, '$.histograms'), json_extract(p.payload, '$.payload.histograms'))) e
    WHERE e.type = 'array' AND json_array_length(e.value) >= 6
),
counted AS (
    SELECT name, arr FROM h
    WHERE CASE WHEN kind IS NOT NULL THEN kind IN ('enumerated', 'boolean', 'flag')
               ELSE json_extract(arr, '$[#-4]') = -1 AND json_extract(arr, '$[#-3]') = -1 END
),
b AS (
    SELECT c.name, b.key AS idx, sum(b.value) AS total
    FROM counted c, json_each(c.arr) b
    WHERE b.key < json_array_length(c.arr) - 5
    GROUP BY c.name, b.key
)
SELECT name AS key, '[' || group_concat(total, ',') || ']' AS value
FROM (SELECT name, idx, total FROM b ORDER BY name, idx)
GROUP BY name
ORDER BY key;
