//! The machine's loopback TCP ceiling, one of the two ceilings the produce
//! target is judged against (the other is O_DIRECT append bandwidth, from
//! `weir-tune disk`): one thread writes GIB GiB in 1 MiB writes, another
//! reads them, over 127.0.0.1.
//!
//! ```text
//! cargo run --release --example loopback_ceiling -- [GIB=4]
//! ```

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::Instant,
};

fn main() {
    let gib: u64 = std::env::args().nth(1).map_or(4, |a| a.parse().expect("GIB"));
    let total = gib << 30;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let reader = thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        let mut buffer = vec![0u8; 1 << 20];
        let mut received = 0u64;
        while received < total {
            match socket.read(&mut buffer).expect("read") {
                0 => break,
                n => received += n as u64,
            }
        }
        received
    });
    let mut socket = TcpStream::connect(address).expect("connect");
    let buffer = vec![7u8; 1 << 20];
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        socket.write_all(&buffer).expect("write");
        sent += buffer.len() as u64;
    }
    drop(socket);
    let received = reader.join().expect("reader");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "loopback_tcp bytes={received} seconds={seconds:.2} throughput_mb_per_s={:.0}",
        received as f64 / 1e6 / seconds
    );
}
