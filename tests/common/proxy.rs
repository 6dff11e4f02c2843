//! A TCP proxy that cuts every connection it carries after a short, varying
//! lifetime, at an arbitrary byte of whatever is flowing at that moment.
//!
//! Idempotent producers exist for exactly this: a connection that dies after
//! the broker appended a batch but before the client read the answer. A
//! client then cannot know whether the batch was stored and must send it
//! again; only the broker's duplicate detection keeps the log exactly-once.
//! Waiting for such a failure to happen by chance would make a test either
//! slow or vacuous, so the proxy makes it routine:
//!
//! * every connection gets a lifetime drawn from a range (150–300 ms by
//!   default);
//! * when it is over, the next chunk of bytes in the direction chosen for
//!   that connection (towards the broker: a request is cut; towards the
//!   client: a response is lost) is forwarded only in part, then both sockets
//!   are shut down; if no such chunk comes within a few tens of
//!   milliseconds, the connection is cut wherever it is;
//! * the proxy counts what it did ([`ProxyStats`]) so a test can assert the
//!   faults really happened.
//!
//! It also reassembles the Produce requests it forwarded to the broker in
//! full and records the idempotent batches in them, so a test can tell how
//! many batches the broker received more than once.
//!
//! Plain std threads, two per connection: clients under test open a handful
//! of connections at a time.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a pump blocks in one read before it looks at the clock again.
const PUMP_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// After its lifetime, a connection waits this long (drawn per connection)
/// for a chunk in the direction chosen to be cut mid-chunk, while the other
/// direction keeps flowing (a request goes out, its response is cut); then it
/// is cut wherever it is.
const CUT_GRACE_MS: Range<u64> = 20..100;
/// Largest request frame the sniffer reassembles; larger ones are skipped.
const SNIFFED_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;
const API_KEY_PRODUCE: i16 = 0;

/// Identity of one record batch as the broker sees it: a retransmission of
/// the same batch has the same producer id, epoch, base sequence, record
/// count and CRC (which covers all of those and the records).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct BatchIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    pub crc: u32,
}

/// What the proxy did so far.
#[derive(Default)]
pub struct ProxyStats {
    pub connections_accepted: AtomicUsize,
    /// Connections the proxy closed on purpose (each counted once).
    pub cuts: AtomicUsize,
    /// Cuts that forwarded only part of a chunk towards the broker.
    pub cuts_mid_request: AtomicUsize,
    /// Cuts that forwarded only part of a chunk towards the client.
    pub cuts_mid_response: AtomicUsize,
    pub bytes_to_broker: AtomicU64,
    pub bytes_to_client: AtomicU64,
    /// Every v2 batch inside a Produce request forwarded to the broker in
    /// full, with how many times it was forwarded.
    pub produced_batches: Mutex<HashMap<BatchIdentity, usize>>,
}

impl ProxyStats {
    /// (distinct batches forwarded, batches forwarded more than once).
    pub fn batch_counts(&self) -> (usize, usize) {
        let batches = self.produced_batches.lock().expect("batch map lock");
        let retransmitted = batches.values().filter(|&&count| count > 1).count();
        (batches.len(), retransmitted)
    }

    pub fn summary(&self) -> String {
        let (batches, retransmitted) = self.batch_counts();
        format!(
            "{} connections, {} cuts ({} mid-request, {} mid-response), {} bytes to broker, {} bytes to client, \
             {batches} distinct produce batches forwarded, {retransmitted} of them more than once",
            self.connections_accepted.load(Ordering::SeqCst),
            self.cuts.load(Ordering::SeqCst),
            self.cuts_mid_request.load(Ordering::SeqCst),
            self.cuts_mid_response.load(Ordering::SeqCst),
            self.bytes_to_broker.load(Ordering::SeqCst),
            self.bytes_to_client.load(Ordering::SeqCst),
        )
    }
}

/// The proxy: bind first (so the broker can advertise its address), then
/// [`CuttingProxy::start`] once the broker's address is known.
pub struct CuttingProxy {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

struct Shared {
    stats: ProxyStats,
    stop: AtomicBool,
    /// When false, connections are forwarded without ever being cut.
    cutting: AtomicBool,
    lifetime_ms: Range<u64>,
    /// Sockets of live connections, to shut them down when the proxy stops.
    live: Mutex<Vec<Arc<Link>>>,
    seed: u64,
}

impl CuttingProxy {
    /// Binds 127.0.0.1:0. Connections cut after `lifetime_ms` (drawn per
    /// connection); cutting starts disabled, see [`CuttingProxy::set_cutting`].
    pub fn bind(lifetime_ms: Range<u64>) -> CuttingProxy {
        assert!(lifetime_ms.start > 0 && lifetime_ms.start < lifetime_ms.end);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy listener");
        let addr = listener.local_addr().expect("proxy local_addr");
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64;
        eprintln!("cutting proxy on {addr}, lifetime {lifetime_ms:?} ms, seed {seed}");
        CuttingProxy {
            listener: Some(listener),
            addr,
            shared: Arc::new(Shared {
                stats: ProxyStats::default(),
                stop: AtomicBool::new(false),
                cutting: AtomicBool::new(false),
                lifetime_ms,
                live: Mutex::new(Vec::new()),
                seed,
            }),
            accept_thread: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Starts accepting; every accepted connection is forwarded to `upstream`.
    pub fn start(&mut self, upstream: SocketAddr) {
        let listener = self.listener.take().expect("proxy already started");
        listener
            .set_nonblocking(true)
            .expect("proxy listener nonblocking");
        let shared = Arc::clone(&self.shared);
        self.accept_thread = Some(
            thread::Builder::new()
                .name("proxy-accept".into())
                .spawn(move || accept_loop(listener, upstream, shared))
                .expect("spawn proxy accept thread"),
        );
    }

    /// Turns cutting on or off for connections accepted from now on.
    pub fn set_cutting(&self, cutting: bool) {
        self.shared.cutting.store(cutting, Ordering::SeqCst);
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for link in self
            .shared
            .live
            .lock()
            .map(|live| live.clone())
            .unwrap_or_default()
        {
            link.shut_down();
        }
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Tiny xorshift generator: the proxy only needs varied, not strong, numbers.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Random {
        Random(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn in_range(&mut self, range: Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    ToBroker,
    ToClient,
}

/// One proxied connection: the two sockets and the cut decision.
struct Link {
    client: TcpStream,
    broker: TcpStream,
    /// None: never cut (cutting was off when it was accepted).
    cut_at: Option<Instant>,
    /// Direction whose next chunk is cut in the middle after `cut_at`.
    cut_direction: Direction,
    cut_grace: Duration,
    closed: AtomicBool,
}

impl Link {
    fn shut_down(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.broker.shutdown(Shutdown::Both);
    }

    /// Closes the link on purpose; counted once per link.
    fn cut(&self, stats: &ProxyStats, mid_chunk: Option<Direction>) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            stats.cuts.fetch_add(1, Ordering::SeqCst);
            match mid_chunk {
                Some(Direction::ToBroker) => stats.cuts_mid_request.fetch_add(1, Ordering::SeqCst),
                Some(Direction::ToClient) => stats.cuts_mid_response.fetch_add(1, Ordering::SeqCst),
                None => 0,
            };
        }
        self.shut_down();
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut random = Random::new(shared.seed);
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(error) => panic!("proxy accept: {error}"),
        };
        shared.stats.connections_accepted.fetch_add(1, Ordering::SeqCst);
        let broker = match TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) {
            Ok(broker) => broker,
            // The client sees a closed connection, as if the broker were down.
            Err(_) => continue,
        };
        client.set_nonblocking(false).expect("client socket blocking");
        for socket in [&client, &broker] {
            socket.set_nodelay(true).expect("set_nodelay");
            socket
                .set_read_timeout(Some(PUMP_POLL_INTERVAL))
                .expect("set_read_timeout");
        }
        let cutting = shared.cutting.load(Ordering::SeqCst);
        let link = Arc::new(Link {
            client,
            broker,
            cut_at: cutting
                .then(|| Instant::now() + Duration::from_millis(random.in_range(shared.lifetime_ms.clone()))),
            cut_direction: if random.next() % 2 == 0 {
                Direction::ToBroker
            } else {
                Direction::ToClient
            },
            cut_grace: Duration::from_millis(random.in_range(CUT_GRACE_MS)),
            closed: AtomicBool::new(false),
        });
        {
            let mut live = shared.live.lock().expect("live links lock");
            live.retain(|link| !link.closed.load(Ordering::SeqCst));
            live.push(Arc::clone(&link));
        }
        for direction in [Direction::ToBroker, Direction::ToClient] {
            let link = Arc::clone(&link);
            let shared = Arc::clone(&shared);
            let seed = random.next();
            thread::Builder::new()
                .name(format!("proxy-{direction:?}"))
                .spawn(move || pump(&link, direction, &shared, seed))
                .expect("spawn proxy pump");
        }
    }
}

/// Copies one direction of a link until either side closes or the link is
/// cut.
fn pump(link: &Link, direction: Direction, shared: &Shared, seed: u64) {
    let (mut from, mut to) = match direction {
        Direction::ToBroker => (&link.client, &link.broker),
        Direction::ToClient => (&link.broker, &link.client),
    };
    let stats = &shared.stats;
    let mut random = Random::new(seed);
    let mut sniffer = (direction == Direction::ToBroker).then(FrameSniffer::default);
    let mut buffer = vec![0u8; 64 * 1024];
    while !link.closed.load(Ordering::SeqCst) {
        let read = from.read(&mut buffer);
        let now = Instant::now();
        let overdue = link.cut_at.filter(|&cut_at| now >= cut_at);
        match read {
            Ok(0) => {
                // One side closed: pass the close on, as a proxy must.
                link.shut_down();
                return;
            }
            Ok(length) => {
                let mut forward = length;
                let cut_here = overdue
                    .is_some_and(|cut_at| direction == link.cut_direction || now >= cut_at + link.cut_grace);
                if cut_here && length > 1 {
                    // Strictly inside the chunk: at least one byte forwarded,
                    // at least one withheld.
                    forward = random.in_range(1..length as u64) as usize;
                }
                if to.write_all(&buffer[..forward]).is_err() {
                    link.shut_down();
                    return;
                }
                let counter = match direction {
                    Direction::ToBroker => &stats.bytes_to_broker,
                    Direction::ToClient => &stats.bytes_to_client,
                };
                counter.fetch_add(forward as u64, Ordering::SeqCst);
                if let Some(sniffer) = sniffer.as_mut() {
                    sniffer.feed(&buffer[..forward], stats);
                }
                if cut_here {
                    link.cut(stats, (forward < length).then_some(direction));
                    return;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                if overdue.is_some_and(|cut_at| now >= cut_at + link.cut_grace) {
                    link.cut(stats, None);
                    return;
                }
            }
            Err(_) => {
                link.shut_down();
                return;
            }
        }
    }
}

/// Reassembles request frames from the bytes forwarded to the broker and
/// records the v2 batches of every complete Produce request.
#[derive(Default)]
struct FrameSniffer {
    pending: Vec<u8>,
    /// Bytes of an oversized frame still to skip.
    skip_bytes: usize,
}

impl FrameSniffer {
    fn feed(&mut self, mut bytes: &[u8], stats: &ProxyStats) {
        if self.skip_bytes > 0 {
            let skipped = self.skip_bytes.min(bytes.len());
            self.skip_bytes -= skipped;
            bytes = &bytes[skipped..];
        }
        self.pending.extend_from_slice(bytes);
        loop {
            if self.pending.len() < 4 {
                return;
            }
            let size = i32::from_be_bytes(self.pending[..4].try_into().expect("4 bytes"));
            let Ok(size) = usize::try_from(size) else {
                // Not Kafka framing; nothing more to learn from this stream.
                self.pending.clear();
                self.skip_bytes = usize::MAX;
                return;
            };
            if size > SNIFFED_FRAME_BYTES_MAX {
                let available = self.pending.len() - 4;
                self.skip_bytes = size - available.min(size);
                self.pending.clear();
                return;
            }
            if self.pending.len() < 4 + size {
                return;
            }
            let frame: Vec<u8> = self.pending.drain(..4 + size).skip(4).collect();
            if frame.len() >= 2 && i16::from_be_bytes([frame[0], frame[1]]) == API_KEY_PRODUCE {
                record_batches(&frame, stats);
            }
        }
    }
}

/// Finds the v2 record batches inside one Produce request frame by their
/// layout: magic byte 2 and a CRC-32C that matches, which no other byte
/// sequence in a request plausibly has.
fn record_batches(frame: &[u8], stats: &ProxyStats) {
    const MAGIC: usize = 16;
    const CRC: usize = 17;
    const ATTRIBUTES: usize = 21;
    const PRODUCER_ID: usize = 43;
    const PRODUCER_EPOCH: usize = 51;
    const BASE_SEQUENCE: usize = 53;
    const RECORD_COUNT: usize = 57;
    const HEADER_BYTES: usize = 61;
    let mut found = Vec::new();
    let mut position = 0;
    while position + HEADER_BYTES <= frame.len() {
        let batch = &frame[position..];
        let length_field = i32::from_be_bytes(batch[8..12].try_into().expect("4 bytes"));
        let plausible = batch[MAGIC] == 2
            && length_field >= (HEADER_BYTES - 12) as i32
            && (length_field as usize) + 12 <= batch.len();
        if plausible {
            let end = 12 + length_field as usize;
            let crc = u32::from_be_bytes(batch[CRC..CRC + 4].try_into().expect("4 bytes"));
            if crc32c::crc32c(&batch[ATTRIBUTES..end]) == crc {
                let read_i64 = |at: usize| i64::from_be_bytes(batch[at..at + 8].try_into().expect("8"));
                let read_i32 = |at: usize| i32::from_be_bytes(batch[at..at + 4].try_into().expect("4"));
                found.push(BatchIdentity {
                    producer_id: read_i64(PRODUCER_ID),
                    producer_epoch: i16::from_be_bytes([batch[PRODUCER_EPOCH], batch[PRODUCER_EPOCH + 1]]),
                    base_sequence: read_i32(BASE_SEQUENCE),
                    record_count: read_i32(RECORD_COUNT),
                    crc,
                });
                position += end;
                continue;
            }
        }
        position += 1;
    }
    let mut batches = stats.produced_batches.lock().expect("batch map lock");
    for identity in found {
        *batches.entry(identity).or_insert(0) += 1;
    }
}
