# Shared by the bench scripts (sourced, not run).

# Drops the page cache of every segment file under $1 (POSIX_FADV_DONTNEED:
# works without root's drop_caches), so the next read comes from the disk.
drop_page_cache() {
    python3 - "$1" <<'PY'
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith(".log"):
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
PY
}

# Waits until 127.0.0.1:$1 accepts connections (10 s at most).
wait_for_port() {
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Number of CPUs in a taskset list such as 1, 0-1 or 0,2-3 (empty: all online).
cpu_count() {
    local list="$1" count=0 part
    if [ -z "$list" ]; then nproc; return; fi
    for part in ${list//,/ }; do
        if [[ $part == *-* ]]; then count=$((count + ${part#*-} - ${part%-*} + 1)); else count=$((count + 1)); fi
    done
    echo "$count"
}
port_busy() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
# A loopback port P, with P+1, that nothing is bound to now: random in
# 20000-32767, below the kernel's ephemeral range (clients' own ports).
free_port_pair() {
    python3 - <<'PORTS'
import random, socket
for _ in range(200):
    port = random.randint(20000, 32766)
    sockets = []
    try:
        for p in (port, port + 1):
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in sockets:
            s.close()
    print(port)
    break
else:
    raise SystemExit("no free port pair found")
PORTS
}
