-- Pings per submission day (the seed's "submission-day count" job).
SELECT submission_date, count(*) AS pings
FROM pings
GROUP BY submission_date
ORDER BY submission_date;
