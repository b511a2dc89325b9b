-- SQL twin of `telemetry job histogram-by-channel --histogram NAME --by info`: one histogram's bucket counts
-- summed per info.appUpdateChannel (the update_channel column; pings without it are left out). Parameter
-- :histogram (default SAMPLE_GC_MS,
-- the sample's; e.g. .param set histogram GC_MS in the REPL).
WITH h AS (
    SELECT p.update_channel AS channel,
           coalesce(json_extract(p.payload, '$.histograms."' || coalesce(:histogram, 'SAMPLE_GC_MS') || '"'),
                    json_extract(p.payload, '$.payload.histograms."' || coalesce(:histogram, 'SAMPLE_GC_MS') || '"')) AS arr
    FROM pings p WHERE p.update_channel IS NOT NULL
),
b AS (
    SELECT h.channel, b.key AS idx, sum(b.value) AS total
    FROM h, json_each(h.arr) b
    WHERE h.arr IS NOT NULL AND json_type(h.arr) = 'array' AND json_array_length(h.arr) >= 5
      AND b.key < json_array_length(h.arr) - 5
    GROUP BY h.channel, b.key
)
SELECT channel AS key, '[' || group_concat(total, ',') || ']' AS value
FROM (SELECT channel, idx, total FROM b ORDER BY channel, idx)
GROUP BY channel
ORDER BY key;
