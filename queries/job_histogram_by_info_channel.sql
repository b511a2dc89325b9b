-- SQL twin of `telemetry job histogram-by-channel --histogram NAME --by info`: one histogram summed per
-- info.appUpdateChannel (the update_channel column; pings without it are left out) with the one histogram sum
-- rule (histogram_sum, docs/sql.md), grouped by bucket layout: a channel whose pings carry several layouts gives
-- one row per layout, keyed 'channel [n buckets]'. Parameter :histogram (default SAMPLE_GC_MS, the sample's;
-- e.g. .param set histogram GC_MS in the REPL).
WITH h AS (
    SELECT p.ping_id, p.update_channel AS channel,
           histogram_layout(p.ping_id, coalesce(:histogram, 'SAMPLE_GC_MS')) AS n
    FROM pings p WHERE p.update_channel IS NOT NULL
),
s AS (
    SELECT channel, n, histogram_sum(ping_id, coalesce(:histogram, 'SAMPLE_GC_MS'), n) AS value
    FROM h WHERE n > 0
    GROUP BY channel, n
)
SELECT CASE WHEN count(*) OVER (PARTITION BY channel) > 1 THEN channel || ' [' || n || ' buckets]' ELSE channel END AS key,
       value
FROM s
ORDER BY channel, n;
