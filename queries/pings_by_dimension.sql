-- Pings per reason, channel and application version (the storage layout's dimensions).
-- Golden output for datasets/sample: Tests/EndToEndTests/Golden/pings_by_dimension.txt
SELECT reason, appUpdateChannel AS channel, appVersion AS version, count(*) AS pings
FROM pings
GROUP BY reason, appUpdateChannel, appVersion
ORDER BY reason, channel, version;
