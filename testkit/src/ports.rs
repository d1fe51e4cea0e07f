//! Free 127.0.0.1 ports, never adjacent to a port handed out before.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Every port this process handed out; never given again, and no new port
/// may be next to one of them (OpenBao binds its cluster listener on P+1).
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A free TCP port on 127.0.0.1, found by binding to port 0. It is not next
/// to any port handed out before by this process.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// A port P such that P..P+width are all free on 127.0.0.1 and none of
/// P-1..=P+width was handed out before; reserves P..P+width.
pub(crate) fn free_ports(width: u16) -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..200 {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = first.local_addr().expect("local address").port();
        let Some(end) = port.checked_add(width) else {
            continue;
        };
        let near_taken = handed_out
            .range(port.saturating_sub(1)..=end)
            .next()
            .is_some();
        let rest_free = (port + 1..end).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if !near_taken && rest_free {
            handed_out.extend(port..end);
            return port;
        }
    }
    panic!("found no free 127.0.0.1 port range of width {width} in 200 tries");
}
