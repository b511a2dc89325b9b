-- OS distribution: the seed's mongodb/examples/osdistribution.js (map emits info.OS, reduce sums).
SELECT coalesce(os, 'UNKNOWN') AS os, count(*) AS pings
FROM pings
GROUP BY os
ORDER BY pings DESC, os;
