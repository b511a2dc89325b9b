-- What the last imports recorded: files by status, then every bad line and file error with its reason.
SELECT status, count(*) AS files, sum(record_count) AS pings, sum(bad_line_count) AS bad_lines
FROM source_files GROUP BY status ORDER BY status;

SELECT reason, count(*) AS count FROM import_errors WHERE severity = 'error' GROUP BY reason ORDER BY reason;
