//! When a request's bytes reached the host: the kernel's receive timestamp
//! of the packet at the head of a socket's receive queue (SO_TIMESTAMPNS,
//! CLOCK_REALTIME, taken as the packet enters the network stack).
//!
//! Used by the connection's reader loop (on the shard that owns the
//! connection) for the `socket` latency stage: right after a frame's size
//! prefix is read, one byte of the frame's body is peeked with
//! `recvmsg(MSG_PEEK | MSG_DONTWAIT)`, which reports the timestamp of the
//! packet holding it without consuming anything. The peek is a plain
//! syscall beside glommio's io_uring reads; it is safe because no read of
//! that socket is in flight between two frames and the stream is
//! unbuffered (nothing of the frame is held in user space yet).

use std::{io, mem, os::fd::RawFd, time::SystemTime};

/// Asks the kernel to timestamp every packet `fd` receives.
pub fn enable(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `on` (a live c_int of the given length).
    let set = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// When the packet holding the next unread byte of `fd` reached the host;
/// None when nothing is queued yet or no timestamp came with it (packets
/// that arrived before [`enable`], or just after the host's first socket
/// enabled timestamps, carry none).
pub fn head_arrival(fd: RawFd) -> Option<SystemTime> {
    let mut byte = 0u8;
    let mut iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    // Room for one SCM_TIMESTAMPNS message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut message: libc::msghdr = unsafe { mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = mem::size_of_val(&control);
    // SAFETY: every pointer in `message` refers to live locals sized as
    // declared; MSG_PEEK consumes nothing and MSG_DONTWAIT never blocks.
    let peeked = unsafe { libc::recvmsg(fd, &mut message, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    if peeked <= 0 {
        return None;
    }
    // SAFETY: the CMSG_* walk stays within `control`, as the kernel filled
    // it (msg_controllen was updated to what it wrote).
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_TIMESTAMPNS {
                let stamp = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<libc::timespec>());
                let since_epoch = std::time::Duration::new(
                    u64::try_from(stamp.tv_sec).ok()?,
                    u32::try_from(stamp.tv_nsec).ok()?,
                );
                return SystemTime::UNIX_EPOCH.checked_add(since_epoch);
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        net::{TcpListener, TcpStream},
        os::fd::AsRawFd,
        time::Duration,
    };

    use super::*;

    #[test]
    fn a_queued_packet_reports_when_it_arrived_and_stays_queued() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        enable(server.as_raw_fd()).unwrap();
        server.set_nonblocking(true).unwrap();
        assert_eq!(head_arrival(server.as_raw_fd()), None, "nothing queued yet");
        // The kernel turns packet timestamps on for the whole host a moment
        // after the first socket asks (deferred work): until then packets
        // arrive without one.
        let mut warm = [0u8; 1];
        for _ in 0..200 {
            client.write_all(b"w").unwrap();
            std::thread::sleep(Duration::from_millis(5));
            let stamped = head_arrival(server.as_raw_fd()).is_some();
            std::io::Read::read_exact(&mut &server, &mut warm).unwrap();
            if stamped {
                break;
            }
        }

        client.write_all(b"frame").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let arrived = head_arrival(server.as_raw_fd()).expect("a timestamp");
        let queued = SystemTime::now().duration_since(arrived).unwrap();
        assert!(queued >= Duration::from_millis(15), "queued for {queued:?}");
        assert!(queued < Duration::from_secs(10), "queued for {queued:?}");
        // Peeking consumed nothing.
        let mut bytes = [0u8; 5];
        server.set_nonblocking(false).unwrap();
        std::io::Read::read_exact(&mut &server, &mut bytes).unwrap();
        assert_eq!(&bytes, b"frame");
    }
}
