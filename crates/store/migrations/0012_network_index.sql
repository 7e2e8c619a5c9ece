-- Columns beside the document for what ports are looked up by most (Nova asks for a server's
-- ports by device_id; network views list ports by network_id), so those filters and paging by
-- id run as indexed queries instead of a scan of every document. Filled on every write; this
-- migration fills them for rows written before it. The per-subnet allocation cursor lets the
-- allocator start where it left off instead of re-reading every allocated address.
ALTER TABLE network_resource ADD COLUMN network_id TEXT;
ALTER TABLE network_resource ADD COLUMN device_id TEXT;
UPDATE network_resource SET network_id = json_extract(doc, '$.network_id'),
    device_id = json_extract(doc, '$.device_id') WHERE kind IN ('port', 'subnet');
CREATE INDEX network_resource_network ON network_resource (kind, network_id, id);
CREATE INDEX network_resource_device ON network_resource (kind, device_id, id);

CREATE TABLE network_ip_cursor (
    subnet_id TEXT PRIMARY KEY,
    next_ip TEXT NOT NULL
);
