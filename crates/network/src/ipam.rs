//! Address management: CIDR arithmetic over `std::net` (v4 and v6 as `u128`), the default
//! allocation pools Neutron derives from a CIDR and gateway, and the allocation of fixed IPs
//! to ports. An address belongs to a port once its row is in `network_ip_allocation`, whose
//! primary key `(subnet_id, ip_address)` makes it impossible to hand out twice, even by
//! replicas sharing PostgreSQL; within one process the store serialises writes, so the check
//! before the insert answers Neutron's 409 instead of a key violation.
//!
//! Subnet documents carry `cidr`, `ip_version`, `gateway_ip` (string or null),
//! `allocation_pools` (`[{"start", "end"}]`) and `ipv6_address_mode`.

use crate::db::Resource;
use crate::error::{NeutronError, NeutronResult};
use http::StatusCode;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use strata_core::Result;
use strata_store::{from_sqlx, sqlx, Row, Tx};

// ------------------------------------------------------------------ pure helpers

/// An address as a number (v4 in the low 32 bits).
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address `v` of `version` (4 or 6).
pub fn from_u128(v: u128, version: u8) -> IpAddr {
    if version == 4 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

pub fn version_of(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        4
    } else {
        6
    }
}

/// A network: its (masked) network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `v6/n`; host bits are masked off. `None` when not a CIDR
    /// (a bare address without `/` is not one).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.trim().split_once('/')?;
        let ip: IpAddr = a.parse().ok()?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
            return None;
        }
        let prefix: u8 = p.parse().ok()?;
        Cidr::new(ip, prefix)
    }

    /// The network of `ip` with `prefix` (host bits masked); `None` if the prefix is too long.
    pub fn new(ip: IpAddr, prefix: u8) -> Option<Cidr> {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        if prefix as u32 > bits {
            return None;
        }
        let c = Cidr { addr: ip, prefix };
        Some(Cidr {
            addr: from_u128(to_u128(ip) & c.mask(), c.version()),
            prefix,
        })
    }

    pub fn version(&self) -> u8 {
        version_of(self.addr)
    }

    /// Address width: 32 or 128.
    pub fn bits(&self) -> u32 {
        if self.addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn host_bits(&self) -> u32 {
        self.bits() - self.prefix as u32
    }

    /// The netmask as a number.
    pub fn mask(&self) -> u128 {
        let all = if self.bits() == 32 {
            u32::MAX as u128
        } else {
            u128::MAX
        };
        let host = self.host_bits();
        if host >= 128 {
            0
        } else {
            all & !((1u128 << host) - 1)
        }
    }

    /// The first address (the network address).
    pub fn first(&self) -> u128 {
        to_u128(self.addr)
    }

    /// The last address (the v4 broadcast address).
    pub fn last(&self) -> u128 {
        let host = self.host_bits();
        let span = if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        self.first() | span
    }

    /// How many addresses (saturating for a v6 /0).
    pub fn size(&self) -> u128 {
        (self.last() - self.first()).saturating_add(1)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && {
            let v = to_u128(ip);
            v >= self.first() && v <= self.last()
        }
    }

    /// Whether `other` lies entirely inside this network.
    pub fn covers(&self, other: &Cidr) -> bool {
        self.version() == other.version()
            && other.first() >= self.first()
            && other.last() <= self.last()
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.version() == other.version()
            && self.first() <= other.last()
            && other.first() <= self.last()
    }

    /// The address `n` places into the network.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let v = self.first().checked_add(n)?;
        (v <= self.last()).then(|| from_u128(v, self.version()))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An inclusive range of addresses as numbers.
pub type Range = (u128, u128);

/// Neutron's default pools: the CIDR without its network address (and, for v4, its
/// broadcast address) and without the gateway.
pub fn default_pools(cidr: &Cidr, gateway: Option<IpAddr>) -> Vec<Range> {
    let (first, last) = (cidr.first(), cidr.last());
    if first == last {
        return vec![(first, last)];
    }
    let start = first + 1;
    let end = if cidr.version() == 4 { last - 1 } else { last };
    if start > end {
        return vec![];
    }
    subtract(&[(start, end)], gateway.map(to_u128))
}

/// `ranges` without `ip`.
pub fn subtract(ranges: &[Range], ip: Option<u128>) -> Vec<Range> {
    let mut out = Vec::new();
    for &(s, e) in ranges {
        match ip {
            Some(g) if g >= s && g <= e => {
                if g > s {
                    out.push((s, g - 1));
                }
                if g < e {
                    out.push((g + 1, e));
                }
            }
            _ => out.push((s, e)),
        }
    }
    out
}

/// Pools as Neutron shows them: `[{"start": .., "end": ..}]`.
pub fn pools_json(pools: &[Range], version: u8) -> Value {
    Value::Array(
        pools
            .iter()
            .map(|&(s, e)| {
                json!({"start": from_u128(s, version).to_string(),
                       "end": from_u128(e, version).to_string()})
            })
            .collect(),
    )
}

/// The pools of a subnet document.
pub fn pools_of(subnet: &Resource) -> Vec<Range> {
    let Some(Value::Array(items)) = subnet.doc.get("allocation_pools") else {
        return vec![];
    };
    items
        .iter()
        .filter_map(|p| {
            let s: IpAddr = p.get("start")?.as_str()?.parse().ok()?;
            let e: IpAddr = p.get("end")?.as_str()?.parse().ok()?;
            Some((to_u128(s), to_u128(e)))
        })
        .collect()
}

/// The subnet's CIDR.
pub fn cidr_of(subnet: &Resource) -> Option<Cidr> {
    subnet.str("cidr").and_then(Cidr::parse)
}

/// The subnet's gateway, if any.
pub fn gateway_of(subnet: &Resource) -> Option<IpAddr> {
    subnet.str("gateway_ip").and_then(|g| g.parse().ok())
}

/// Whether the subnet's addresses are derived from MACs (SLAAC or stateless DHCPv6).
pub fn is_auto_address(subnet: &Resource) -> bool {
    subnet.doc.get("ip_version").and_then(Value::as_i64) == Some(6)
        && matches!(
            subnet.str("ipv6_address_mode"),
            Some("slaac") | Some("dhcpv6-stateless")
        )
}

/// Parses `aa:bb:cc:dd:ee:ff` (also `-` separated).
pub fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        out[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// The modified EUI-64 address of `mac` in the /64 (or shorter) `prefix`.
pub fn eui64(prefix: &Cidr, mac: &str) -> Option<IpAddr> {
    if prefix.version() != 6 || prefix.prefix > 64 {
        return None;
    }
    let m = parse_mac(mac)?;
    let iid = [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
    let low = u64::from_be_bytes(iid) as u128;
    let high = prefix.first() & !(u64::MAX as u128);
    Some(IpAddr::V6(Ipv6Addr::from(high | low)))
}

/// The lowest address of `pools` that is neither in `taken` (sorted ascending) nor `skip`.
/// Walks the pools once, stepping over runs of taken addresses, so its cost is bounded by
/// the number of pools plus allocations, never the pool size.
pub fn lowest_free(pools: &[Range], taken: &[u128], skip: &[u128]) -> Option<u128> {
    let mut pools = pools.to_vec();
    pools.sort();
    let mut blocked: Vec<u128> = taken.iter().chain(skip).copied().collect();
    blocked.sort_unstable();
    blocked.dedup();
    for (s, e) in pools {
        let mut cand = s;
        let mut i = blocked.partition_point(|&b| b < cand);
        while i < blocked.len() && blocked[i] == cand {
            if cand == e {
                break;
            }
            cand += 1;
            i += 1;
        }
        if cand <= e && !(i < blocked.len() && blocked[i] == cand) {
            return Some(cand);
        }
    }
    None
}

// ------------------------------------------------------------------ errors

fn already_allocated(ip: IpAddr, subnet_id: &str) -> NeutronError {
    NeutronError::conflict(
        "IpAddressAlreadyAllocated",
        format!("IP address {ip} already allocated in subnet {subnet_id}."),
    )
}

fn invalid_for_subnet(ip: IpAddr) -> NeutronError {
    NeutronError::new(
        StatusCode::BAD_REQUEST,
        "InvalidIpForSubnet",
        format!("IP address {ip} is not a valid IP for the specified subnet."),
    )
}

fn exhausted(network_id: &str) -> NeutronError {
    NeutronError::conflict(
        "IpAddressGenerationFailure",
        format!("No more IP addresses available on network {network_id}."),
    )
}

// ------------------------------------------------------------------ allocation

/// Every address allocated on `subnet_id`, ascending.
pub async fn allocated(tx: &mut Tx, subnet_id: &str) -> Result<Vec<IpAddr>> {
    let rows = sqlx::query("SELECT ip_address FROM network_ip_allocation WHERE subnet_id = $1")
        .bind(subnet_id)
        .fetch_all(tx.conn())
        .await
        .map_err(from_sqlx)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let s: String = r.try_get("ip_address").map_err(from_sqlx)?;
        if let Ok(ip) = s.parse() {
            out.push(ip);
        }
    }
    out.sort();
    Ok(out)
}

/// The ids of the ports holding an address on the subnet.
pub async fn ports_on_subnet(tx: &mut Tx, subnet_id: &str) -> Result<Vec<String>> {
    let rows =
        sqlx::query("SELECT DISTINCT port_id FROM network_ip_allocation WHERE subnet_id = $1")
            .bind(subnet_id)
            .fetch_all(tx.conn())
            .await
            .map_err(from_sqlx)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("port_id").map_err(from_sqlx))
        .collect()
}

async fn is_taken(tx: &mut Tx, subnet_id: &str, ip: IpAddr) -> Result<bool> {
    Ok(sqlx::query(
        "SELECT 1 AS one FROM network_ip_allocation WHERE subnet_id = $1 AND ip_address = $2",
    )
    .bind(subnet_id)
    .bind(ip.to_string())
    .fetch_optional(tx.conn())
    .await
    .map_err(from_sqlx)?
    .is_some())
}

async fn record(
    tx: &mut Tx,
    subnet_id: &str,
    ip: IpAddr,
    network_id: &str,
    port_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO network_ip_allocation (subnet_id, ip_address, network_id, port_id) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(subnet_id)
    .bind(ip.to_string())
    .bind(network_id)
    .bind(port_id)
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

/// Allocates an address of `subnet` to `port_id` inside the write: the `requested` one if it
/// is a valid, free host address of the subnet; otherwise the EUI-64 address of `mac` on
/// SLAAC / stateless DHCPv6 subnets, or the lowest free address of the allocation pools
/// (never the gateway).
pub async fn allocate(
    tx: &mut Tx,
    subnet: &Resource,
    port_id: &str,
    network_id: &str,
    requested: Option<IpAddr>,
    mac: Option<&str>,
) -> Result<NeutronResult<IpAddr>> {
    let Some(cidr) = cidr_of(subnet) else {
        return Ok(Err(exhausted(network_id)));
    };
    if let Some(ip) = requested {
        if !cidr.contains(ip) {
            return Ok(Err(invalid_for_subnet(ip)));
        }
        let v = to_u128(ip);
        if cidr.version() == 4 && cidr.prefix < 31 && (v == cidr.first() || v == cidr.last()) {
            return Ok(Err(invalid_for_subnet(ip)));
        }
        if cidr.version() == 6 && cidr.prefix < 127 && v == cidr.first() {
            // the subnet-router anycast address
            return Ok(Err(invalid_for_subnet(ip)));
        }
        if is_auto_address(subnet) {
            let auto = mac.and_then(|m| eui64(&cidr, m));
            if auto != Some(ip) {
                return Ok(Err(NeutronError::invalid_input(format!(
                    "IPv6 address {ip} cannot be directly assigned to a port on subnet {} \
                     since the subnet is configured for automatic addresses",
                    subnet.id
                ))));
            }
        }
        if is_taken(tx, &subnet.id, ip).await? {
            return Ok(Err(already_allocated(ip, &subnet.id)));
        }
        record(tx, &subnet.id, ip, network_id, port_id).await?;
        return Ok(Ok(ip));
    }
    if is_auto_address(subnet) {
        if let Some(ip) = mac.and_then(|m| eui64(&cidr, m)) {
            if is_taken(tx, &subnet.id, ip).await? {
                return Ok(Err(already_allocated(ip, &subnet.id)));
            }
            record(tx, &subnet.id, ip, network_id, port_id).await?;
            return Ok(Ok(ip));
        }
    }
    let version = cidr.version();
    let mut skip = Vec::new();
    if let Some(g) = gateway_of(subnet) {
        skip.push(to_u128(g));
    }
    if version == 4 && cidr.prefix < 31 {
        skip.push(cidr.first());
        skip.push(cidr.last());
    }
    let mut pools = pools_of(subnet);
    pools.sort();
    let start = cursor(tx, &subnet.id).await?;
    let found = match probe(tx, &subnet.id, &pools, start, &skip, version).await? {
        Some(v) => Some(v),
        None => {
            // The addresses after the cursor are crowded: read every allocation once and
            // take the first free one from the cursor on, wrapping round to the start.
            let taken: Vec<u128> = allocated(tx, &subnet.id)
                .await?
                .into_iter()
                .filter(|ip| version_of(*ip) == version)
                .map(to_u128)
                .collect();
            let from_cursor: Vec<Range> = pools
                .iter()
                .filter(|(_, e)| *e >= start)
                .map(|(s, e)| ((*s).max(start), *e))
                .collect();
            lowest_free(&from_cursor, &taken, &skip).or_else(|| lowest_free(&pools, &taken, &skip))
        }
    };
    match found {
        Some(v) => {
            let ip = from_u128(v, version);
            record(tx, &subnet.id, ip, network_id, port_id).await?;
            set_cursor(tx, &subnet.id, v + 1).await?;
            Ok(Ok(ip))
        }
        None => Ok(Err(exhausted(network_id))),
    }
}

/// Candidates checked per query when probing from the cursor.
const PROBE_CHUNK: usize = 64;
/// Chunks probed before falling back to reading every allocation.
const PROBE_CHUNKS: usize = 8;

/// Where the next automatic allocation on the subnet starts looking: just after the last
/// address it handed out. Addresses are taken in order through the pools and wrap round, so a
/// released address is not handed out again until the pools have been gone through (as
/// Neutron avoids reusing an address at once), and an allocation costs a few indexed lookups
/// instead of a read of every allocated address.
async fn cursor(tx: &mut Tx, subnet_id: &str) -> Result<u128> {
    let r = sqlx::query("SELECT next_ip FROM network_ip_cursor WHERE subnet_id = $1")
        .bind(subnet_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(match r {
        Some(r) => r
            .try_get::<String, _>("next_ip")
            .map_err(from_sqlx)?
            .parse()
            .unwrap_or(0),
        None => 0,
    })
}

async fn set_cursor(tx: &mut Tx, subnet_id: &str, next: u128) -> Result<()> {
    sqlx::query(
        "INSERT INTO network_ip_cursor (subnet_id, next_ip) VALUES ($1, $2) \
         ON CONFLICT (subnet_id) DO UPDATE SET next_ip = excluded.next_ip",
    )
    .bind(subnet_id)
    .bind(next.to_string())
    .execute(tx.conn())
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

/// Forgets the subnet's cursor (the subnet is deleted).
async fn drop_cursor(tx: &mut Tx, subnet_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM network_ip_cursor WHERE subnet_id = $1")
        .bind(subnet_id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

/// The addresses of `pools` (sorted) from `start` on, wrapping round to the first pool, in
/// order; `skip` excluded.
fn candidates<'p>(
    pools: &'p [Range],
    start: u128,
    skip: &'p [u128],
) -> impl Iterator<Item = u128> + 'p {
    let after = pools
        .iter()
        .filter(move |(_, e)| *e >= start)
        .flat_map(move |(s, e)| (*s).max(start)..=*e);
    let before = pools
        .iter()
        .filter(move |(s, _)| *s < start)
        .flat_map(move |(s, e)| *s..=(*e).min(start.saturating_sub(1)));
    after.chain(before).filter(move |v| !skip.contains(v))
}

/// The first free address from the cursor on, checking [`PROBE_CHUNK`] candidates per
/// indexed query; `None` when [`PROBE_CHUNKS`] chunks found none (or the pools are empty).
async fn probe(
    tx: &mut Tx,
    subnet_id: &str,
    pools: &[Range],
    start: u128,
    skip: &[u128],
    version: u8,
) -> Result<Option<u128>> {
    let mut cands = candidates(pools, start, skip);
    for _ in 0..PROBE_CHUNKS {
        let chunk: Vec<u128> = cands.by_ref().take(PROBE_CHUNK).collect();
        if chunk.is_empty() {
            return Ok(None);
        }
        let texts: Vec<String> = chunk
            .iter()
            .map(|v| from_u128(*v, version).to_string())
            .collect();
        let ps: Vec<String> = (0..texts.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT ip_address FROM network_ip_allocation WHERE subnet_id = $1 \
             AND ip_address IN ({})",
            ps.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(subnet_id);
        for t in &texts {
            q = q.bind(t.as_str());
        }
        let taken: Vec<String> = q
            .fetch_all(tx.conn())
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(|r| r.try_get::<String, _>("ip_address").map_err(from_sqlx))
            .collect::<Result<_>>()?;
        if let Some(i) = texts.iter().position(|t| !taken.contains(t)) {
            return Ok(Some(chunk[i]));
        }
    }
    Ok(None)
}

/// Releases every address (and the MAC) a port holds.
pub async fn release(tx: &mut Tx, port_id: &str) -> Result<()> {
    crate::db::release_port(tx, port_id).await
}

/// Releases one address.
pub async fn release_address(tx: &mut Tx, subnet_id: &str, ip: IpAddr) -> Result<()> {
    sqlx::query("DELETE FROM network_ip_allocation WHERE subnet_id = $1 AND ip_address = $2")
        .bind(subnet_id)
        .bind(ip.to_string())
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

/// Releases every address on a subnet (when the subnet goes).
pub async fn release_subnet(tx: &mut Tx, subnet_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM network_ip_allocation WHERE subnet_id = $1")
        .bind(subnet_id)
        .execute(tx.conn())
        .await
        .map_err(from_sqlx)?;
    drop_cursor(tx, subnet_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parse_and_bounds() {
        let c = Cidr::parse("10.1.2.3/24").unwrap();
        assert_eq!(c.to_string(), "10.1.2.0/24");
        assert_eq!(c.size(), 256);
        assert!(c.contains(ip("10.1.2.255")));
        assert!(!c.contains(ip("10.1.3.0")));
        assert!(!c.contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.0").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0/8").is_none());
        assert!(Cidr::parse("garbage/8").is_none());
        let z = Cidr::parse("0.0.0.0/0").unwrap();
        assert_eq!(z.size(), 1 << 32);
        let v6 = Cidr::parse("2001:db8::5/64").unwrap();
        assert_eq!(v6.to_string(), "2001:db8::/64");
        assert_eq!(v6.nth(1), Some(ip("2001:db8::1")));
        assert_eq!(from_u128(v6.last(), 6), ip("2001:db8::ffff:ffff:ffff:ffff"));
        let all = Cidr::parse("::/0").unwrap();
        assert_eq!(all.size(), u128::MAX);
    }

    #[test]
    fn overlap_and_cover() {
        let a = Cidr::parse("10.0.0.0/16").unwrap();
        let b = Cidr::parse("10.0.5.0/24").unwrap();
        let c = Cidr::parse("10.1.0.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a) && a.covers(&b) && !b.covers(&a));
        assert!(!a.overlaps(&c));
        assert!(!a.overlaps(&Cidr::parse("::/0").unwrap()));
    }

    #[test]
    fn default_pools_follow_neutron() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        let p = default_pools(&c, Some(ip("10.0.0.1")));
        assert_eq!(
            pools_json(&p, 4),
            json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
        );
        let p = default_pools(&c, Some(ip("10.0.0.100")));
        assert_eq!(p.len(), 2);
        assert_eq!(
            default_pools(&c, None),
            vec![(to_u128(ip("10.0.0.1")), to_u128(ip("10.0.0.254")))]
        );
        let v6 = Cidr::parse("2001:db8::/64").unwrap();
        let p = default_pools(&v6, Some(ip("2001:db8::1")));
        assert_eq!(
            pools_json(&p, 6),
            json!([{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}])
        );
        let h = Cidr::parse("10.0.0.7/32").unwrap();
        assert_eq!(default_pools(&h, None).len(), 1);
        let p31 = Cidr::parse("10.0.0.0/31").unwrap();
        assert!(default_pools(&p31, None).is_empty());
    }

    #[test]
    fn candidates_start_at_the_cursor_and_wrap() {
        let pools = vec![(10, 12), (20, 22)];
        let all: Vec<u128> = candidates(&pools, 0, &[]).collect();
        assert_eq!(all, vec![10, 11, 12, 20, 21, 22]);
        let from: Vec<u128> = candidates(&pools, 12, &[21]).collect();
        assert_eq!(from, vec![12, 20, 22, 10, 11]);
        let between: Vec<u128> = candidates(&pools, 15, &[]).collect();
        assert_eq!(between, vec![20, 21, 22, 10, 11, 12]);
        let past: Vec<u128> = candidates(&pools, 99, &[]).collect();
        assert_eq!(past, vec![10, 11, 12, 20, 21, 22]);
    }

    #[test]
    fn lowest_free_skips_runs() {
        let pools = vec![(10, 20), (30, 40)];
        assert_eq!(lowest_free(&pools, &[], &[]), Some(10));
        assert_eq!(lowest_free(&pools, &[10, 11, 12], &[]), Some(13));
        let full: Vec<u128> = (10..=20).collect();
        assert_eq!(lowest_free(&pools, &full, &[30]), Some(31));
        let all: Vec<u128> = (10..=20).chain(30..=40).collect();
        assert_eq!(lowest_free(&pools, &all, &[]), None);
        assert_eq!(lowest_free(&[(5, 5)], &[], &[5]), None);
        // a nearly full /16
        let big = vec![(1u128, 65534u128)];
        let taken: Vec<u128> = (1..65534).collect();
        assert_eq!(lowest_free(&big, &taken, &[]), Some(65534));
    }

    #[test]
    fn eui64_from_mac() {
        let p = Cidr::parse("2003::/64").unwrap();
        assert_eq!(
            eui64(&p, "fa:16:3e:12:34:56"),
            Some(ip("2003::f816:3eff:fe12:3456"))
        );
        assert_eq!(eui64(&p, "nope"), None);
        assert_eq!(
            eui64(&Cidr::parse("10.0.0.0/8").unwrap(), "fa:16:3e:12:34:56"),
            None
        );
    }
}
