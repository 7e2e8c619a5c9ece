-- The other host that runs a guest of a server while it moves (the destination while a live
-- migration copies it, the source while a resize waits to be confirmed): its agent is given
-- the server too. NULL when only `host` runs it.
ALTER TABLE compute_server ADD COLUMN move_host TEXT;
CREATE INDEX compute_server_move_host ON compute_server (move_host);
