-- SQL twin of the built-in job `histogram-distribution`: for every linear-family histogram (stored
-- log_sum and log_sum_squares both -1: linear, boolean, flag, enumerated), the element-wise sum of its
-- bucket counts over all pings, printed as [b0,b1,...]. Histograms: top-level `histograms`, else
-- `payload.histograms` (unified pings).
WITH h AS (
    SELECT e.key AS name, e.value AS arr
    FROM pings p,
         json_each(coalesce(json_extract(p.payload, '$.histograms'), json_extract(p.payload, '$.payload.histograms'))) e
    WHERE e.type = 'array' AND json_array_length(e.value) >= 5
      AND json_extract(e.value, '$[#-4]') = -1 AND json_extract(e.value, '$[#-3]') = -1
),
b AS (
    SELECT h.name, b.key AS idx, sum(b.value) AS total
    FROM h, json_each(h.arr) b
    WHERE b.key < json_array_length(h.arr) - 5
    GROUP BY h.name, b.key
)
SELECT name AS key, '[' || group_concat(total, ',') || ']' AS value
FROM (SELECT name, idx, total FROM b ORDER BY name, idx)
GROUP BY name
ORDER BY key;
