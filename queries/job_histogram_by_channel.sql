-- SQL twin of `telemetry job histogram-by-channel --histogram NAME`: one histogram summed per channel (the
-- appUpdateChannel dimension) with the one histogram sum rule (histogram_sum: exact element-wise bucket sums and
-- the five statistics, docs/sql.md), grouped by bucket layout: a channel whose pings carry several layouts gives
-- one row per layout, keyed 'channel [n buckets]', never a zero-padded sum. Parameter :histogram (default
-- SAMPLE_GC_MS, the sample's; e.g. .param set histogram GC_MS in the REPL).
WITH h AS (
    SELECT p.ping_id, p.appUpdateChannel AS channel,
           histogram_layout(p.ping_id, coalesce(:histogram, 'SAMPLE_GC_MS')) AS n
    FROM pings p
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
