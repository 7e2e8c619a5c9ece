-- What lets compute follow thousands of hosts cheaply: the follower that wakes agents' long
-- polls reads the hosts whose revision moved (`rev` above what it has seen).
CREATE INDEX compute_host_rev_rev ON compute_host_rev (rev);
