package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The full-disk variant (-full-disk): the gateway's SQLite database, its
// create journal and its outputs live on a small tmpfs; a ballast file
// fills it during the middle third of the kills (kill -9 while full) and is
// removed for the last third, after which everything must settle as in
// the ordinary run, with no create orphaned by the failed writes.

// mountTmpfs mounts a tmpfs of size bytes at dir (root only); the returned
// function unmounts it.
func mountTmpfs(dir string, size int64) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0750", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("mount tmpfs at %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return func() { _ = exec.Command("umount", "-l", dir).Run() }, nil
}

// fillDisk writes a ballast file in dir until the filesystem is full and
// returns its size.
func fillDisk(dir string) (int64, error) {
	f, err := os.Create(filepath.Join(dir, "ballast"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	chunk := make([]byte, 64<<10)
	var n int64
	for {
		k, err := w.Write(chunk)
		n += int64(k)
		if err == nil {
			continue
		}
		if errors.Is(err, syscall.ENOSPC) {
			// Squeeze out the last partial block too.
			_ = w.Flush()
			for _, sz := range []int{4096, 512, 1} {
				for {
					if _, err := f.Write(make([]byte, sz)); err != nil {
						break
					}
					n += int64(sz)
				}
			}
			return n, nil
		}
		return n, err
	}
}

// freeDisk removes the ballast.
func freeDisk(dir string) error { return os.Remove(filepath.Join(dir, "ballast")) }

// diskFree is the free space of dir's filesystem.
func diskFree(dir string) int64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// heldStats counts, in the gateway's logs, the distinct jobs whose upstream
// id was held (a save failed after the create) and those replayed from the
// create journal by a later process.
func heldStats(logPrefix string) (held, replayed map[string]bool) {
	heldJobs, replayedJobs := map[string]bool{}, map[string]bool{}
	for _, suffix := range []string{".out", ".err"} {
		f, err := os.Open(logPrefix + suffix)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			job := field(line, "job=")
			switch {
			case strings.Contains(line, "saving the upstream id failed"):
				heldJobs[job] = true
			case strings.Contains(line, "replaying a create"):
				replayedJobs[job] = true
			}
		}
		f.Close()
	}
	return heldJobs, replayedJobs
}

func field(line, key string) string {
	i := strings.Index(line, key)
	if i < 0 {
		return ""
	}
	rest := line[i+len(key):]
	if j := strings.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// setLatency makes the emulator answer every API request after d, so
// creates are in flight long enough for the disk to fill under them (the
// case of a create that reached Magic Hour whose save then fails).
func setLatency(ctx context.Context, emuURL string, d time.Duration) error {
	body := fmt.Sprintf(`{"latency":%q}`, d.String())
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, emuURL+"/_emulator/faults", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT /_emulator/faults: %s", resp.Status)
	}
	return nil
}
