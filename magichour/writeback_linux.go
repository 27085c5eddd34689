package magichour

import "golang.org/x/sys/unix"

// startWriteback asks the kernel to start writing [off, off+n) of fd to
// disk now, without waiting (sync_file_range SYNC_FILE_RANGE_WRITE), so
// that the writeback of a large download overlaps its transfer and the
// final fsync has little left to do. Errors are ignored: the fsync that
// follows reports any real failure.
func startWriteback(fd uintptr, off, n int64) {
	_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
