//! A minimal HTTP/1.1 client for weir's admin listener (`--admin-listen`):
//! one request per connection, the whole response read until the broker
//! closes it.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use super::Broker;

/// The admin listener's address of `broker`.
pub fn admin_addr(broker: &Broker) -> SocketAddr {
    broker
        .admin_url()
        .trim_start_matches("http://")
        .parse()
        .expect("admin address")
}

/// Sends `request` as is and returns (status, body).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to admin");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    exchange(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: weir\r\n\r\n").as_bytes(),
    )
}

/// The "Total count" of `.hgrm` text.
pub fn hgrm_total(hgrm: &str) -> u64 {
    hgrm.lines()
        .find_map(|line| line.split("Total count    =").nth(1))
        .and_then(|rest| rest.trim().trim_end_matches(']').trim().parse().ok())
        .unwrap_or_else(|| panic!("no total count in {hgrm}"))
}
