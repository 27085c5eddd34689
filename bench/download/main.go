// Command download compares `hourglass image download ID -o DIR` (the CLI,
// which uses magichour.Client.Download) with `curl -o` on one large
// synthetic output served by an in-process emulator, and shows that a cut
// connection is resumed rather than restarted.
//
//	go run ./bench/download [-size 1073741824] [-dir /tmp] [-reps 5]
//
// Each rep runs, in turn, the CLI, `curl -o` and `curl -o` followed by
// `sync FILE` (an fsync of curl's file, so that both have the bytes on
// disk), each writing into the same folder, curl on a fresh URL (the
// project read again). Times are wall times from process start to exit
// (the CLI's start-up, its project read and its fsync included); the
// median and the spread (min to max) of the reps are reported. Peak RSS
// comes from wait4's rusage (ru_maxrss). The resume run uses the SDK in a
// child process (this binary with -client) with the emulator's
// TruncateDownload fault at 1: every response is cut after half the size,
// so the transfer needs at least one Range request, and the client reports
// how many body bytes it received in total.
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
	reps := flag.Int("reps", 5, "CLI and curl runs, alternated; the median and spread of each are reported")
	hg := flag.String("hourglass", "", "hourglass binary to measure (default: built from ./cmd/hourglass)")
	flag.Parse()
	var err error
	if *client {
		err = runClient(*base, *key, *id, *dir)
	} else {
		err = run(*size, *dir, max(*reps, 1), *hg)
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
	cpu         float64 // user+system seconds of the process and its children
}

func run(size int64, dir string, reps int, hg string) error {
	ctx := context.Background()
	work, err := os.MkdirTemp(dir, "hourglass-dlbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if hg == "" {
		hg = filepath.Join(work, "hourglass")
		build := exec.Command("go", "build", "-o", hg, "github.com/hourglasshq/hourglass/cmd/hourglass")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build hourglass: %w", err)
		}
	}
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
	self, err := os.Executable()
	if err != nil {
		return err
	}
	out := filepath.Join(work, "out") // every client writes here
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	clean := func() error {
		ents, err := os.ReadDir(out)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}

	cli := func() (measured, error) {
		defer clean()
		cmd := exec.Command(hg, "image", "download", p.ID, "-o", out, "-q", "--json", "--base-url", srv.URL, "--api-key", srv.APIKey)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+work) // no profile, no cached catalog
		cmd.Stderr = os.Stderr
		start := time.Now()
		stdout, err := cmd.Output()
		secs := time.Since(start).Seconds()
		if err != nil {
			return measured{}, fmt.Errorf("hourglass image download: %w", err)
		}
		var res struct {
			Outputs []struct{ Path string } `json:"outputs"`
		}
		if err := json.Unmarshal(stdout, &res); err != nil || len(res.Outputs) != 1 {
			return measured{}, fmt.Errorf("hourglass image download: %v: %s", err, stdout)
		}
		st, err := os.Stat(res.Outputs[0].Path)
		if err != nil {
			return measured{}, err
		}
		sum, err := hashFile(res.Outputs[0].Path)
		if err != nil {
			return measured{}, err
		}
		return measured{name: "hourglass CLI", seconds: secs, maxRSSKiB: maxRSS(cmd.ProcessState), cpu: cpuSeconds(cmd.ProcessState), size: st.Size(), transferred: st.Size(), requests: 1, sha: sum}, nil
	}
	sdk := func(name string) (measured, error) {
		defer clean()
		cmd := exec.Command(self, "-client", "-base", srv.URL, "-key", srv.APIKey, "-id", p.ID, "-dir", out)
		cmd.Stderr = os.Stderr
		start := time.Now()
		stdout, err := cmd.Output()
		secs := time.Since(start).Seconds()
		if err != nil {
			return measured{}, fmt.Errorf("%s: %w", name, err)
		}
		var rep clientReport
		if err := json.Unmarshal(stdout, &rep); err != nil {
			return measured{}, fmt.Errorf("%s: %w: %s", name, err, stdout)
		}
		sum, err := hashFile(rep.Path)
		if err != nil {
			return measured{}, err
		}
		return measured{name: name, seconds: secs, maxRSSKiB: maxRSS(cmd.ProcessState), cpu: cpuSeconds(cmd.ProcessState), size: rep.Size,
			transferred: rep.Transferred, requests: rep.Requests, sha: sum}, nil
	}
	curl := func(withSync bool) (measured, error) {
		defer clean()
		fresh, err := c.GetProject(ctx, p.Kind, p.ID)
		if err != nil {
			return measured{}, err
		}
		path := filepath.Join(out, "curl.bin")
		name, sh := "curl -o", `curl -sS --fail -o "$1" "$2"`
		if withSync {
			name, sh = "curl -o; sync", `curl -sS --fail -o "$1" "$2" && sync "$1"`
		}
		cmd := exec.Command("sh", "-c", sh, "sh", path, fresh.Downloads[0].URL)
		cmd.Stderr = os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return measured{}, fmt.Errorf("%s: %w", name, err)
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
		return measured{name: name, seconds: secs, maxRSSKiB: maxRSS(cmd.ProcessState), cpu: cpuSeconds(cmd.ProcessState), size: st.Size(),
			transferred: st.Size(), requests: 1, sha: sum}, nil
	}

	var clis, curls, synced []measured
	for range reps {
		m, err := cli()
		if err != nil {
			return err
		}
		clis = append(clis, m)
		if m, err = curl(false); err != nil {
			return err
		}
		curls = append(curls, m)
		if m, err = curl(true); err != nil {
			return err
		}
		synced = append(synced, m)
	}
	if err := srv.Emulator.SetFaults(emulator.Faults{TruncateDownload: 1}); err != nil {
		return err
	}
	cut, err := sdk("sdk, cut at 50%")
	if err != nil {
		return err
	}

	fmt.Printf("output size %d bytes (%.0f MiB), emulator in-process, clients in child processes writing into one folder; %d alternated runs\n", size, float64(size)/(1<<20), reps)
	for i := range clis {
		fmt.Printf("  run %d: hourglass %.2fs (cpu %.2fs), curl -o %.2fs (cpu %.2fs), curl -o; sync %.2fs (cpu %.2fs)\n", i+1,
			clis[i].seconds, clis[i].cpu, curls[i].seconds, curls[i].cpu, synced[i].seconds, synced[i].cpu)
	}
	fmt.Println()
	fmt.Printf("%-16s %9s %15s %11s %12s %14s %9s %s\n", "client", "median s", "spread s", "MiB/s", "peak RSS", "bytes received", "requests", "sha256")
	row := func(all []measured) measured {
		r := median(all)
		lo, hi := spread(all)
		fmt.Printf("%-16s %9.2f %7.2f-%-7.2f %11.1f %9.1f MiB %14d %9d %s\n", r.name, r.seconds, lo, hi, float64(r.size)/(1<<20)/r.seconds,
			float64(maxOf(all))/1024, r.transferred, r.requests, r.sha[:16])
		return r
	}
	cliRow, curlRow, syncRow := row(clis), row(curls), row(synced)
	fmt.Printf("%-16s %9.2f %15s %11.1f %9.1f MiB %14d %9d %s\n", cut.name, cut.seconds, "", float64(cut.size)/(1<<20)/cut.seconds,
		float64(cut.maxRSSKiB)/1024, cut.transferred, cut.requests, cut.sha[:16])
	ratio := curlRow.seconds / cliRow.seconds
	fmt.Println()
	fmt.Printf("goal: CLI peak RSS %.1f MiB, the largest of %d runs (want < 64): %s\n", float64(maxOf(clis))/1024, reps, verdict(maxOf(clis) < 64<<10))
	fmt.Printf("goal: CLI throughput %.0f%% of curl -o, medians (want >= 90%%): %s\n", 100*ratio, verdict(ratio >= 0.9))
	fmt.Printf("info: CLI throughput %.0f%% of curl -o; sync (both durable on disk)\n", 100*syncRow.seconds/cliRow.seconds)
	fmt.Printf("goal: cut connection resumed, %.3fx the size received over %d requests (want ~1.0x): %s\n",
		float64(cut.transferred)/float64(size), cut.requests, verdict(cut.transferred < size+size/20 && cut.requests > 1))
	fmt.Printf("check: identical bytes (CLI, curl, resumed): %s\n", verdict(cliRow.sha == curlRow.sha && cut.sha == cliRow.sha && syncRow.sha == curlRow.sha))
	return nil
}

func spread(ms []measured) (lo, hi float64) {
	lo, hi = ms[0].seconds, ms[0].seconds
	for _, m := range ms {
		lo, hi = min(lo, m.seconds), max(hi, m.seconds)
	}
	return lo, hi
}

func maxOf(ms []measured) int64 {
	var m int64
	for _, x := range ms {
		m = max(m, x.maxRSSKiB)
	}
	return m
}

func cpuSeconds(ps *os.ProcessState) float64 {
	return (ps.UserTime() + ps.SystemTime()).Seconds()
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
