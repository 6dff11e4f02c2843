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
