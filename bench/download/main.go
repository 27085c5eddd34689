// Command download compares magichour.Client.Download with curl on one
// large synthetic output served by an in-process emulator, and shows that
// a cut connection is resumed rather than restarted.
//
//	go run ./bench/download [-size 1073741824] [-dir /tmp]
//
// The SDK download runs in a separate process (this same binary with
// -client), so that its peak RSS is its own; peak RSS of both the SDK
// client and curl comes from wait4's rusage (ru_maxrss). Throughput is the
// output size over the child's wall time (process start to exit, fsync of
// the SDK's file included; curl does not fsync). The resume run sets the
// emulator's TruncateDownload fault to 1: every response is cut after half
// the file's size, so the transfer needs at least one Range request, and
// the client reports how many body bytes it received in total.
package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/magichour"
)

// clientReport is what the -client process prints.
type clientReport struct {
	Path        string  `json:"path"`
	Size        int64   `json:"size"`
	Transferred int64   `json:"transferred"`
	Requests    int64   `json:"requests"`
	Seconds     float64 `json:"seconds"`
	VmHWMKiB    int64   `json:"vmhwm_kib"`
}

func main() {
	client := flag.Bool("client", false, "internal: run as the SDK download process")
	base := flag.String("base", "", "internal: API base URL")
	key := flag.String("key", "", "internal: API key")
	id := flag.String("id", "", "internal: image project id")
	size := flag.Int64("size", 1<<30, "output size in bytes")
	dir := flag.String("dir", os.TempDir(), "where the downloads are written (needs 2x size free)")
	reps := flag.Int("reps", 3, "SDK and curl runs, alternated; the median of each is reported")
	flag.Parse()
	var err error
	if *client {
		err = runClient(*base, *key, *id, *dir)
	} else {
		err = run(*size, *dir, max(*reps, 1))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "download:", err)
		os.Exit(1)
	}
}

// countingTransport counts response body bytes and requests.
type countingTransport struct {
	rt       http.RoundTripper
	bytes    atomic.Int64
	requests atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err == nil && r.URL.Path != "" && len(r.URL.Path) > 20 && r.URL.Path[:20] == "/_emulator/download/" {
		t.requests.Add(1)
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.bytes}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func runClient(base, key, id, dir string) error {
	ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := magichour.NewClient(magichour.WithAPIKey(key), magichour.WithBaseURL(base),
		magichour.WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	p, err := c.GetProject(ctx, magichour.KindImage, id)
	if err != nil {
		return err
	}
	files, err := c.Download(ctx, p, dir)
	if err != nil {
		return err
	}
	rep := clientReport{Path: files[0].Path, Size: files[0].Size, Transferred: ct.bytes.Load(), Requests: ct.requests.Load(),
		Seconds: time.Since(start).Seconds(), VmHWMKiB: vmHWM()}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// vmHWM reads the peak resident set size from /proc/self/status.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	var kib int64 = -1
	for _, line := range splitLines(string(b)) {
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kib); err == nil {
			return kib
		}
	}
	return kib
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

type measured struct {
	name        string
	seconds     float64
	maxRSSKiB   int64
	size        int64
	transferred int64
	requests    int64
	sha         string
}

func run(size int64, dir string, reps int) error {
	ctx := context.Background()
	srv, err := emulator.Listen(ctx, "127.0.0.1:0", emulator.WithSpeed(10000), emulator.WithOutputSize(size))
	if err != nil {
		return err
	}
	defer srv.Close()
	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		return err
	}
	cr, err := c.Create(ctx, magichour.ToolAIImageGenerator, map[string]any{"image_count": 1, "style": map[string]any{"prompt": "bench"}})
	if err != nil {
		return err
	}
	p, err := c.Wait(ctx, cr.Kind, cr.ID, magichour.WithTimeScale(10000))
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(dir, "hourglass-dlbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	self, err := os.Executable()
	if err != nil {
		return err
	}

	sdk := func(name string) (measured, error) {
		sub := filepath.Join(work, name)
		if err := os.Mkdir(sub, 0o755); err != nil {
			return measured{}, err
		}
		defer os.RemoveAll(sub)
		cmd := exec.Command(self, "-client", "-base", srv.URL, "-key", srv.APIKey, "-id", p.ID, "-dir", sub)
		cmd.Stderr = os.Stderr
		start := time.Now()
		out, err := cmd.Output()
		secs := time.Since(start).Seconds()
		if err != nil {
			return measured{}, fmt.Errorf("%s: %w", name, err)
		}
		var rep clientReport
		if err := json.Unmarshal(out, &rep); err != nil {
			return measured{}, fmt.Errorf("%s: %w: %s", name, err, out)
		}
		sum, err := hashFile(rep.Path)
		if err != nil {
			return measured{}, err
		}
		return measured{name: name, seconds: secs, maxRSSKiB: maxRSS(cmd.ProcessState), size: rep.Size,
			transferred: rep.Transferred, requests: rep.Requests, sha: sum}, nil
	}
	curl := func() (measured, error) {
		fresh, err := c.GetProject(ctx, p.Kind, p.ID)
		if err != nil {
			return measured{}, err
		}
		path := filepath.Join(work, "curl.bin")
		defer os.Remove(path)
		cmd := exec.Command("curl", "-sS", "--fail", "-o", path, fresh.Downloads[0].URL)
		cmd.Stderr = os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return measured{}, fmt.Errorf("curl: %w", err)
		}
		secs := time.Since(start).Seconds()
		st, err := os.Stat(path)
		if err != nil {
			return measured{}, err
		}
		sum, err := hashFile(path)
		if err != nil {
			return measured{}, err
		}
		return measured{name: "curl -o", seconds: secs, maxRSSKiB: maxRSS(cmd.ProcessState), size: st.Size(),
			transferred: st.Size(), requests: 1, sha: sum}, nil
	}

	var sdks, curls []measured
	for range reps {
		m, err := sdk("sdk Download")
		if err != nil {
			return err
		}
		sdks = append(sdks, m)
		if m, err = curl(); err != nil {
			return err
		}
		curls = append(curls, m)
	}
	rows := []measured{median(sdks), median(curls)}
	var m measured
	if err := srv.Emulator.SetFaults(emulator.Faults{TruncateDownload: 1}); err != nil {
		return err
	}
	if m, err = sdk("sdk, cut at 50%"); err != nil {
		return err
	}
	rows = append(rows, m)

	fmt.Printf("output size %d bytes (%.0f MiB), emulator in-process, clients in child processes; median of %d alternated runs\n", size, float64(size)/(1<<20), reps)
	for i := range sdks {
		fmt.Printf("  run %d: sdk %.2fs, curl %.2fs\n", i+1, sdks[i].seconds, curls[i].seconds)
	}
	fmt.Println()
	fmt.Printf("%-16s %9s %11s %12s %14s %9s %s\n", "client", "seconds", "MiB/s", "peak RSS", "bytes received", "requests", "sha256")
	for _, r := range rows {
		fmt.Printf("%-16s %9.2f %11.1f %9.1f MiB %14d %9d %s\n", r.name, r.seconds, float64(r.size)/(1<<20)/r.seconds,
			float64(r.maxRSSKiB)/1024, r.transferred, r.requests, r.sha[:16])
	}
	sdkRow, curlRow, cut := rows[0], rows[1], rows[2]
	ratio := curlRow.seconds / sdkRow.seconds
	fmt.Println()
	fmt.Printf("goal: SDK peak RSS %.1f MiB (want < 64): %s\n", float64(sdkRow.maxRSSKiB)/1024, verdict(sdkRow.maxRSSKiB < 64<<10))
	fmt.Printf("goal: SDK throughput %.0f%% of curl (want >= 80%%): %s\n", 100*ratio, verdict(ratio >= 0.8))
	fmt.Printf("goal: cut connection resumed, %.3fx the size received over %d requests (want ~1.0x): %s\n",
		float64(cut.transferred)/float64(size), cut.requests, verdict(cut.transferred < size+size/20 && cut.requests > 1))
	fmt.Printf("check: identical bytes (sdk, curl, resumed): %s\n", verdict(sdkRow.sha == curlRow.sha && cut.sha == sdkRow.sha))
	return nil
}

func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss // KiB on Linux
	}
	return -1
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// median returns the run with the median time.
func median(ms []measured) measured {
	s := slices.Clone(ms)
	slices.SortFunc(s, func(a, b measured) int { return cmp.Compare(a.seconds, b.seconds) })
	return s[len(s)/2]
}
